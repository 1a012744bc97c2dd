// From a recipe's `parallel` section and the world the launcher started to the device mesh shape.
// The sizes must multiply to WORLD_SIZE; data_parallel 0 (the default) takes what the other
// dimensions leave. Also checks what data parallelism asks of the training section.
#pragma once
#include "forma/parallel/device_mesh.h"
#include "forma/parallel/dist_env.h"
#include "forma/train/recipe.h"

namespace forma::parallel {

// Throws forma::Error naming the recipe, the keys and the world size (and where it came from).
MeshShape plan_mesh_shape(const train::Recipe& recipe, const DistEnv& env);

}  // namespace forma::parallel
