#include "forma/parallel/layout.h"

#include "forma/core/error.h"

namespace forma::parallel {

MeshShape plan_mesh_shape(const train::Recipe& recipe, const DistEnv& env) {
  const auto& p = recipe.parallel;
  std::string world = env.source == "none"
                          ? "1 (no launcher: start the workers with forma launch, srun or mpirun)"
                          : fmt::format("{} (from {})", env.world_size, env.source);
  MeshShape shape;
  shape.pp = p.pipeline_parallel, shape.cp = p.context_parallel, shape.tp = p.tensor_parallel;
  const int others = shape.pp * shape.cp * shape.tp;
  if (p.data_parallel == 0) {
    check(env.world_size % others == 0,
          "{}: parallel: pipeline_parallel={} x context_parallel={} x tensor_parallel={} = {} does not divide "
          "WORLD_SIZE {}", recipe.source, shape.pp, shape.cp, shape.tp, others, world);
    shape.dp = env.world_size / others;
  } else {
    shape.dp = p.data_parallel;
  }
  check(shape.world() == env.world_size,
        "{}: parallel: data_parallel={} x tensor_parallel={} x pipeline_parallel={} x context_parallel={} = {} "
        "processes, but WORLD_SIZE is {}", recipe.source, shape.dp, shape.tp, shape.pp, shape.cp, shape.world(),
        world);
  // Each data-parallel rank runs its share of the step's micro-batches, so that the micro-batches
  // (and the learning curve) are the same for any number of ranks.
  const auto& t = recipe.training;
  check(t.grad_accum_steps % shape.dp == 0,
        "{}: training.grad_accum_steps={} cannot be divided among data_parallel={} ranks: each rank runs "
        "grad_accum_steps / data_parallel micro-batches of the global batch (micro_batch_size x "
        "grad_accum_steps sequences); make grad_accum_steps a multiple of {}", recipe.source,
        t.grad_accum_steps, shape.dp, shape.dp);
  return shape;
}

}  // namespace forma::parallel
