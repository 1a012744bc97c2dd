// `forma train` with tensor parallelism as real processes under `forma launch` on loopback: tp=2,
// tp=2 with sequence parallel, and dp=2 x tp=2 with ZeRO-1 must follow the learning curve of one
// process on the same global batch (losses, validation losses and gradient norms), for a dense
// Llama-style model and a Mixtral-style mixture of experts.
#include <gtest/gtest.h>

#include "parallel/parallel_training.h"

namespace forma::test {
namespace {

void expect_tensor_parallel_follows_one_process(const std::string& model) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto single = run_parallel_training(data, dir + "/single", {model, 1, 0, {}, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const std::string tp2 = "parallel.tensor_parallel=2";
  struct Layout {
    std::string name;
    ParallelRun run;
  };
  std::vector<Layout> layouts{
      {"tp=2", {model, 2, 0, {tp2}, {}}},
      {"tp=2 sequence_parallel", {model, 2, 0, {tp2, "parallel.sequence_parallel=true"}, {}}},
      {"dp=2 x tp=2 zero_stage=1", {model, 4, 0, {tp2, "parallel.data_parallel=2", "parallel.zero_stage=1"}, {}}},
  };
  auto want = logged_steps(dir + "/single/metrics.jsonl");
  ASSERT_EQ(want.size(), 20u);
  auto want_val = logged_steps(dir + "/single/metrics.jsonl", true);
  ASSERT_EQ(want_val.size(), 2u);  // steps 10 and 20
  for (size_t i = 0; i < layouts.size(); ++i) {
    const auto out = dir + "/layout" + std::to_string(i);
    auto r = run_parallel_training(data, out, layouts[i].run);
    ASSERT_EQ(r.exit_code, 0) << layouts[i].name << "\n" << r.output;
    EXPECT_NE(r.output.find("tensor_parallel=2"), std::string::npos) << r.output;
    expect_same_curve(logged_steps(out + "/metrics.jsonl"), want, model + " " + layouts[i].name);
    expect_same_curve(logged_steps(out + "/metrics.jsonl", true), want_val, model + " " + layouts[i].name + " val");
  }
}

TEST(TensorParallelTrain, LlamaFollowsOneProcess) { expect_tensor_parallel_follows_one_process("llama"); }

TEST(TensorParallelTrain, MixtralFollowsOneProcess) { expect_tensor_parallel_follows_one_process("mixtral"); }

TEST(TensorParallelTrain, SequenceParallelNeedsADivisibleSequence) {
  auto dir = scratch_dir();
  auto r = run_parallel_training(dir + "/none", dir + "/x",
                                 {"llama", 2, 0, {"parallel.tensor_parallel=2", "parallel.sequence_parallel=true",
                                                      "training.seq_len=31"}, {}});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("training.seq_len=31 must be divisible by parallel.tensor_parallel=2"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace forma::test
