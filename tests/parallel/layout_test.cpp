// The mesh shape a recipe's parallel section asks for, against the world the launcher started.
#include "forma/parallel/layout.h"

#include <gtest/gtest.h>

#include "forma/core/error.h"

namespace forma::parallel {
namespace {

std::string layout_error(const train::Recipe& recipe, const DistEnv& env) {
  try {
    plan_mesh_shape(recipe, env);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Layout, DataParallelDefaultsToTheWorldAndMustMultiply) {
  auto recipe = train::parse_recipe("model:\n  path: m\ntraining:\n  grad_accum_steps: 8\n", "r.yaml");
  DistEnv env;
  env.world_size = 4, env.source = "slurm";
  EXPECT_EQ(plan_mesh_shape(recipe, env).dp, 4);  // data_parallel omitted: all of the world
  recipe.parallel.data_parallel = 2;
  auto e = layout_error(recipe, env);
  EXPECT_NE(e.find("r.yaml: parallel: data_parallel=2"), std::string::npos) << e;
  EXPECT_NE(e.find("= 2 processes, but WORLD_SIZE is 4 (from slurm)"), std::string::npos) << e;
  env.world_size = 1, env.source = "none";
  EXPECT_NE(layout_error(recipe, env).find("WORLD_SIZE is 1 (no launcher"), std::string::npos);
  recipe.parallel.data_parallel = 0;
  EXPECT_EQ(plan_mesh_shape(recipe, env).dp, 1);
}

TEST(Layout, MicroBatchesMustDivideAmongRanks) {
  auto recipe = train::parse_recipe("model:\n  path: m\ntraining:\n  grad_accum_steps: 6\n", "r.yaml");
  DistEnv env;
  env.world_size = 3, env.source = "torchrun";
  EXPECT_EQ(plan_mesh_shape(recipe, env).dp, 3);
  env.world_size = 4;
  auto e = layout_error(recipe, env);
  EXPECT_NE(e.find("training.grad_accum_steps=6 cannot be divided among data_parallel=4"), std::string::npos) << e;
}

}  // namespace
}  // namespace forma::parallel
