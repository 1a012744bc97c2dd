// LoRA under `forma launch` (real processes, Gloo on loopback): data parallelism and ZeRO-1 follow
// the one-process curve with adapters on a frozen base, through a resume, and a one-process run
// resumes a ZeRO-1 LoRA checkpoint on the same curve (tensor parallelism: lora_tensor_parallel_test.cpp).
#include <gtest/gtest.h>

#include "parallel/parallel_training.h"

namespace forma::test {
namespace {

// No dropout: each rank would draw its masks from its own generator, not from the one sequence a
// single process draws.
const std::vector<std::string> kLora{"lora.r=4", "lora.alpha=8", "lora.target_modules=[q_proj, v_proj, up_proj]",
                                     "optimizer.lr=0.01"};

std::vector<std::string> lora_with(std::vector<std::string> sets, const std::vector<std::string>& more) {
  sets.insert(sets.end(), more.begin(), more.end());
  return sets;
}

TEST(LoraParallelTrain, Dp2AndZero1FollowOneProcessThroughResume) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto single = run_parallel_training(data, dir + "/single", {"llama", 1, 0, kLora, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  EXPECT_NE(single.output.find("LoRA: 6 layers adapted"), std::string::npos) << single.output;
  for (auto [name, extra] : {std::pair{"dp", "parallel.data_parallel=2"}, std::pair{"zero", "parallel.zero_stage=1"}}) {
    auto sets = lora_with(kLora, {extra});
    auto first = run_parallel_training(data, dir + "/" + name, {"llama", 2, 0, sets, {"--stop-after", "10"}});
    ASSERT_EQ(first.exit_code, 0) << first.output;
    auto second = run_parallel_training(data, dir + "/" + name, {"llama", 2, 0, sets, {"--resume"}});
    ASSERT_EQ(second.exit_code, 0) << second.output;
  }
  auto want = logged_steps(dir + "/single/metrics.jsonl");
  ASSERT_EQ(want.size(), 20u);
  // The same micro-batches, the sum of two gradients, the same AdamW code: bit-equal, as without LoRA.
  EXPECT_EQ(logged_losses(dir + "/dp/metrics.jsonl"), logged_losses(dir + "/single/metrics.jsonl"));
  expect_same_curve(logged_steps(dir + "/zero/metrics.jsonl"), want, "LoRA dp=2 zero_stage=1");

  // Across layouts: one process continues the ZeRO-1 checkpoint of step 10.
  auto resumed = run_parallel_training(data, dir + "/from-zero",
                                       {"llama", 1, 0, kLora, {"--resume", dir + "/zero/checkpoints/step-0000010"}});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto got = logged_steps(dir + "/from-zero/metrics.jsonl");
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].step, want[i + 10].step);
    EXPECT_LE(relative_difference(got[i].loss, want[i + 10].loss), 1e-4) << "step " << got[i].step;
  }
}

}  // namespace
}  // namespace forma::test
