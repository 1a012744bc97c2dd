// The mesh test re-runs this test binary as 4 workers under `forma launch`; each worker checks the
// collectives of its groups against sums computed by hand from the rank layout.
#include "forma/parallel/device_mesh.h"

#include "forma/parallel/collectives.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "forma/core/error.h"
#include "test_paths.h"

using forma::parallel::Dim;
using forma::parallel::MeshShape;

TEST(MeshShape, TpIsInnermost) {
  MeshShape s{1, 2, 1, 2};  // pp, dp, cp, tp
  EXPECT_EQ(s.coords(0), (std::array<int, 4>{0, 0, 0, 0}));
  EXPECT_EQ(s.coords(1), (std::array<int, 4>{0, 0, 0, 1}));
  EXPECT_EQ(s.coords(2), (std::array<int, 4>{0, 1, 0, 0}));
  for (int r = 0; r < 4; ++r) EXPECT_EQ(s.rank_of(s.coords(r)), r);
}

TEST(DeviceMesh, ShapeMustMatchWorld) {
  forma::parallel::DistEnv env;
  env.world_size = 1;
  try {
    forma::parallel::DeviceMesh mesh(env, MeshShape{1, 2, 1, 1});
    FAIL();
  } catch (const forma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("data_parallel=2"), std::string::npos) << e.what();
  }
}

// Worker side: only runs when started by the launcher below.
TEST(MeshWorker, CollectivesOverEachDimension) {
  if (!std::getenv("FORMA_MESH_WORKER")) GTEST_SKIP() << "runs only as a launched worker";
  auto env = forma::parallel::detect_dist_env();
  forma::parallel::DeviceMesh mesh(env, MeshShape{1, 2, 1, 2});
  auto value = torch::full({3}, static_cast<float>(env.rank));
  std::vector<at::Tensor> world{value.clone()};
  mesh.world()->allreduce(world)->wait();
  EXPECT_EQ(world[0][0].item<float>(), 0 + 1 + 2 + 3);
  // tp group of rank r holds {r, r^1}; dp group holds {r, r^2}
  std::vector<at::Tensor> tp{value.clone()};
  mesh.group(Dim::tp)->allreduce(tp)->wait();
  EXPECT_EQ(tp[0][1].item<float>(), env.rank + (env.rank ^ 1));
  std::vector<at::Tensor> dp{value.clone()};
  mesh.group(Dim::dp)->allreduce(dp)->wait();
  EXPECT_EQ(dp[0][2].item<float>(), env.rank + (env.rank ^ 2));
  std::vector<at::Tensor> pp{value.clone()};
  mesh.group(Dim::pp)->allreduce(pp)->wait();  // a group of one: unchanged
  EXPECT_EQ(pp[0][0].item<float>(), env.rank);

  // Collectives in the shapes layers use, checked against the same sums computed locally.
  namespace fp = forma::parallel;
  auto mine = torch::arange(8, torch::kFloat32).reshape({2, 4}) * (env.rank + 1);
  auto gathered = fp::all_gather_cat(mesh.group(Dim::tp), mine, 1);  // [2, 8]: tp rank 0 then 1
  int peer = env.rank ^ 1;
  auto lo = torch::arange(8, torch::kFloat32).reshape({2, 4}) * (std::min(env.rank, peer) + 1);
  auto hi = torch::arange(8, torch::kFloat32).reshape({2, 4}) * (std::max(env.rank, peer) + 1);
  EXPECT_TRUE(torch::equal(gathered, torch::cat({lo, hi}, 1)));
  auto scattered = fp::reduce_scatter_sum(mesh.group(Dim::tp), mine, 1);  // [2, 2]
  EXPECT_TRUE(torch::equal(scattered, (lo + hi).narrow(1, mesh.coord(Dim::tp) * 2, 2)));
  auto b = torch::full({2}, static_cast<float>(env.rank));
  fp::broadcast(mesh.group(Dim::dp), b, 1);  // dp rank 1 of rank r's dp group is r | 2
  EXPECT_EQ(b[0].item<float>(), env.rank | 2);
  // Point to point around the world's ring (as pipeline stages pass activations): even ranks send
  // first, odd ranks receive first, so no pair waits on the other.
  auto outgoing = torch::full({2, 3}, static_cast<float>(10 * env.rank)), incoming = torch::empty({2, 3});
  const int next = (env.rank + 1) % 4, previous = (env.rank + 3) % 4;
  if (env.rank % 2 == 0) fp::send(mesh.world(), outgoing, next, 7), fp::recv(mesh.world(), incoming, previous, 7);
  else fp::recv(mesh.world(), incoming, previous, 7), fp::send(mesh.world(), outgoing, next, 7);
  EXPECT_TRUE(torch::equal(incoming, torch::full({2, 3}, static_cast<float>(10 * previous))));
  fp::barrier(mesh.world());
}

TEST(DeviceMesh, FourLaunchedWorkersAgree) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string cmd = "FORMA_MESH_WORKER=1 " + forma::test::forma_binary() +
                    " launch --nproc-per-node 4 -- " + self + " --gtest_filter=MeshWorker.*";
  auto r = forma::test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string& out = r.output;
  for (int r = 0; r < 4; ++r)
    EXPECT_NE(out.find("[rank " + std::to_string(r) + "] [  PASSED  ] 1 test"), std::string::npos) << out;
}
