// The data-parallel optimizers against the one-process AdamW. The test re-runs this test binary as
// 2 workers under `forma launch`; each worker gives its optimizer a different half of every
// gradient, and checks the result against AdamW stepped in the same process with the summed
// gradient. Small buckets put several parameters' boundaries inside shards and padding at the ends;
// one parameter has no gradient anywhere at first, one only on rank 1 (a MoE expert without tokens).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "forma/parallel/collectives.h"
#include "forma/parallel/data_parallel.h"
#include "forma/parallel/grad_buckets.h"
#include "forma/parallel/zero_optimizer.h"
#include "test_paths.h"

namespace forma::parallel {
namespace {

using train::NamedParameter;

std::vector<NamedParameter> zero_test_params() {
  torch::manual_seed(7);
  return {{"a.weight", torch::randn({5, 7}).requires_grad_(), true},
          {"a.bias", torch::randn({3}).requires_grad_(), false},
          {"b.weight", torch::randn({4, 4}).requires_grad_(), true},
          {"expert.weight", torch::randn({6}).requires_grad_(), true}};
}

// Rank r's part of parameter i's gradient at `step`; undefined where that rank has none.
torch::Tensor zero_test_grad(size_t i, int rank, int step, const torch::Tensor& like) {
  if (i == 2 && step == 1) return {};       // nobody's batch reached b.weight in step 1
  if (i == 3 && rank == 0) return {};       // expert.weight: only rank 1 routes tokens to it
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(1000 * step + 10 * i + rank));
  return at::randn(like.sizes(), gen) * 0.1;
}

// The whole gradient as one process has it: the sum over ranks of what they hold.
torch::Tensor zero_test_summed_grad(size_t i, int step, const torch::Tensor& like) {
  torch::Tensor sum;
  for (int r = 0; r < 2; ++r) {
    auto g = zero_test_grad(i, r, step, like);
    if (g.defined()) sum = sum.defined() ? sum + g : g;
  }
  return sum;
}

// Steps `opt` over `mine` (this rank's gradients) and a reference AdamW over `ref` (summed gradients);
// returns the largest parameter difference.
double step_both(train::Optimizer& opt, std::vector<NamedParameter>& mine, train::Optimizer& reference,
                 std::vector<NamedParameter>& ref, int rank, int first_step, int steps, double clip,
                 std::vector<double>* norms) {
  double worst = 0;
  for (int step = first_step; step < first_step + steps; ++step) {
    for (size_t i = 0; i < mine.size(); ++i) {
      mine[i].tensor.mutable_grad() = zero_test_grad(i, rank, step, mine[i].tensor);
      ref[i].tensor.mutable_grad() = zero_test_summed_grad(i, step, ref[i].tensor);
    }
    double lr = 1e-2 * step;
    double got = opt.step(lr, clip), want = reference.step(lr, clip);
    norms->push_back(got - want);
    opt.zero_grad(), reference.zero_grad();
  }
  for (size_t i = 0; i < mine.size(); ++i) {
    worst = std::max(worst, (mine[i].tensor - ref[i].tensor).abs().max().item<double>());
  }
  return worst;
}

void check_optimizer(const GroupPtr& group, int zero_stage) {
  const int rank = group->getRank();
  const train::AdamWOptions options{0, 0.9, 0.95, 1e-8, 0.1};
  const int64_t bucket_bytes = 80;  // 20 floats: buckets [a.weight], [a.bias, b.weight], [expert]
  for (double clip : {0.0, 0.05}) {
    auto mine = zero_test_params(), ref = zero_test_params();
    auto opt = zero_stage == 1 ? make_zero_adamw(group, mine, options, bucket_bytes)
                               : make_all_reduce_adamw(group, mine, options, bucket_bytes);
    auto reference = train::make_local_adamw(ref, options);
    std::vector<double> norm_errors;
    double diff = step_both(*opt, mine, *reference, ref, rank, 1, 4, clip, &norm_errors);
    for (double e : norm_errors) EXPECT_LE(std::abs(e), 1e-6) << "zero_stage " << zero_stage << " clip " << clip;
    if (clip == 0) {
      // No clipping: elementwise AdamW on the same summed gradients, so the same bits.
      EXPECT_EQ(diff, 0.0) << "zero_stage " << zero_stage;
    } else {
      EXPECT_LT(diff, 1e-6) << "zero_stage " << zero_stage;  // the clip scale differs in the last bits
    }
    EXPECT_GT((mine[2].tensor - zero_test_params()[2].tensor).abs().max().item<double>(), 0);  // moved after step 1

    // The gathered state is AdamW's state_dict (rank 0), and loading it resumes the same updates.
    auto state = opt->gather_state_dict();
    if (rank == 0) {
      auto want = reference->gather_state_dict();
      ASSERT_EQ(state.size(), want.size());
      for (auto& [name, tensor] : want) {
        ASSERT_TRUE(state.count(name)) << name;
        EXPECT_LE((state[name].to(torch::kFloat64) - tensor.to(torch::kFloat64)).abs().max().item<double>(),
                  clip == 0 ? 0.0 : 1e-6)
            << name;
      }
    }
    auto full = reference->gather_state_dict();  // every rank loads the same file in a resume
    auto resumed = zero_stage == 1 ? make_zero_adamw(group, mine, options, bucket_bytes)
                                   : make_all_reduce_adamw(group, mine, options, bucket_bytes);
    resumed->load_state_dict(full, "state");
    for (size_t i = 0; i < mine.size(); ++i) mine[i].tensor.detach().copy_(ref[i].tensor);
    norm_errors.clear();
    EXPECT_LT(step_both(*resumed, mine, *reference, ref, rank, 5, 2, clip, &norm_errors), clip == 0 ? 1e-12 : 1e-6);
  }
}

TEST(ZeroWorker, ShardedAndReplicatedAdamWEqualOneProcess) {
  if (!std::getenv("FORMA_ZERO_WORKER")) GTEST_SKIP() << "runs only as a launched worker";
  auto env = detect_dist_env();
  DeviceMesh mesh(env, MeshShape{1, 2, 1, 1});
  check_optimizer(mesh.group(Dim::dp), 0);
  check_optimizer(mesh.group(Dim::dp), 1);
  barrier(mesh.world());
}

TEST(GradBuckets, PlanKeepsParametersWholeAndPadsToShards) {
  auto params = zero_test_params();  // 35, 3, 16, 6 elements
  auto buckets = plan_grad_buckets(params, 80, 2);  // 20 floats
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].numel, 35);  // larger than a bucket: a bucket of its own
  EXPECT_EQ(buckets[0].padded, 36);
  ASSERT_EQ(buckets[1].entries.size(), 2u);
  EXPECT_EQ(buckets[1].entries[1].offset, 3);
  EXPECT_EQ(buckets[1].numel, 19);
  EXPECT_EQ(buckets[1].padded, 20);
  EXPECT_EQ(buckets[2].numel, 6);  // 19 + 6 would exceed 20
  EXPECT_EQ(plan_grad_buckets(params, 1 << 20, 4).size(), 1u);
}

TEST(DataParallelOptimizers, TwoLaunchedWorkersMatchAdamW) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string cmd = "FORMA_ZERO_WORKER=1 " + forma::test::forma_binary() +
                    " launch --nproc-per-node 2 -- " + self +
                    " --gtest_filter=ZeroWorker.*";
  auto r = forma::test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 1] [  PASSED  ] 1 test"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[rank 0] [  PASSED  ] 1 test"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace forma::parallel
