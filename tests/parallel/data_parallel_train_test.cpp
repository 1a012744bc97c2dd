// `forma train` as real processes under `forma launch` on loopback: data parallelism (dp=2) and
// ZeRO-1 must follow the learning curve of one process on the same global batch, resume must
// continue it, and a bad parallel section must be refused with a message naming what it found.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "parallel/parallel_training.h"

namespace forma::test {
namespace {

// Rank 0 alone logs (and writes); rank 1 reports only warnings and errors.
void expect_rank_zero_speaks(const CommandResult& r) {
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\[rank 0\] \[[0-9:]+\] info step 20/20)"))) << r.output;
  EXPECT_FALSE(std::regex_search(r.output, std::regex(R"(\[rank 1\] \[[0-9:]+\] info)"))) << r.output;
}

// Runs `run` to step 20, in two parts when `resume`: to step 10 (--stop-after), then resumed.
void run_dp(const std::string& data, const std::string& out, ParallelRun run, bool resume) {
  if (resume) {
    auto first = run;
    first.flags = {"--stop-after", "10"};
    auto part1 = run_parallel_training(data, out, first);
    ASSERT_EQ(part1.exit_code, 0) << part1.output;
    run.flags = {"--resume"};
  }
  auto r = run_parallel_training(data, out, run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (resume) {
    EXPECT_NE(r.output.find("resumed from " + out + "/checkpoints/step-0000010"), std::string::npos) << r.output;
  }
  expect_rank_zero_speaks(r);
}

// One process runs 20 steps straight, and so do dp=2 and dp=2 with ZeRO-1, or they stop after step
// 10 and resume when `resume`. Returns the scratch folder.
std::string expect_dp_and_zero_follow_one_process(const std::string& model, bool resume) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto single = run_parallel_training(data, dir + "/single", {model, 1, 0, {}, {}});
  EXPECT_EQ(single.exit_code, 0) << single.output;
  run_dp(data, dir + "/dp", {model, 2, 0, {"parallel.data_parallel=2"}, {}}, resume);
  run_dp(data, dir + "/zero", {model, 2, 0, {"parallel.zero_stage=1"}, {}}, resume);

  auto want = logged_steps(dir + "/single/metrics.jsonl");
  EXPECT_EQ(want.size(), 20u);
  // The losses move (noisy 4-sequence batches): a broken synchronisation could not hide in a flat curve.
  double lowest = 1e9, highest = 0;
  for (auto& s : want) lowest = std::min(lowest, s.loss), highest = std::max(highest, s.loss);
  EXPECT_GT(highest - lowest, 0.5);
  // dp=2 runs the same micro-batches; a sum of two gradients does not depend on its order, and the
  // clipping and AdamW code is the same: bit-equal to one process, through the resume.
  EXPECT_EQ(logged_losses(dir + "/dp/metrics.jsonl"), logged_losses(dir + "/single/metrics.jsonl"));
  expect_same_curve(logged_steps(dir + "/dp/metrics.jsonl"), want, model + " dp=2");
  // ZeRO-1 sums the squares of the gradient norm in another order: the same curve within fp32 noise.
  expect_same_curve(logged_steps(dir + "/zero/metrics.jsonl"), want, model + " dp=2 zero_stage=1");
  auto want_val = logged_steps(dir + "/single/metrics.jsonl", true);
  EXPECT_EQ(want_val.size(), 2u);  // steps 10 and 20
  expect_same_curve(logged_steps(dir + "/dp/metrics.jsonl", true), want_val, model + " dp=2 val_loss");
  expect_same_curve(logged_steps(dir + "/zero/metrics.jsonl", true), want_val, model + " zero val_loss");
  return dir;
}

TEST(DataParallelTrain, LlamaDp2AndZero1FollowOneProcessThroughResume) {
  auto dir = expect_dp_and_zero_follow_one_process("llama", /*resume=*/true);
  // The ZeRO-1 checkpoint holds the whole optimizer state: one process resumes it on the same curve.
  auto data = dir + "/pattern";
  auto single = run_parallel_training(data, dir + "/from-zero",
                                {"llama", 1, 0, {}, {"--resume", dir + "/zero/checkpoints/step-0000010"}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto want = logged_steps(dir + "/single/metrics.jsonl");
  auto got = logged_steps(dir + "/from-zero/metrics.jsonl");
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].step, want[i + 10].step);
    EXPECT_LE(relative_difference(got[i].loss, want[i + 10].loss), 1e-4) << "step " << got[i].step;
  }
}

TEST(DataParallelTrain, MixtralDp2AndZero1FollowOneProcess) {
  expect_dp_and_zero_follow_one_process("mixtral", /*resume=*/false);
}

TEST(DataParallelTrain, BadParallelSectionIsAnErrorNamingIt) {
  // (recipe_test and layout_test check the other refusals in-process.)
  auto dir = scratch_dir();
  auto three = run_parallel_training(dir + "/none", dir + "/x", {"llama", 2, 0, {"parallel.data_parallel=3"}, {}});
  EXPECT_EQ(three.exit_code, 1) << three.output;
  // Every rank refuses the recipe, but only rank 0's message is certain to appear: the launcher stops
  // the others as soon as one rank fails.
  for (auto* rank : {"[rank 0] error: "}) {
    EXPECT_NE(three.output.find(std::string(rank) + tiny_recipe_path() +
                                ": parallel: data_parallel=3 x tensor_parallel=1 x pipeline_parallel=1 x "
                                "context_parallel=1 = 3 processes, but WORLD_SIZE is 2 (from torchrun)"),
              std::string::npos)
        << three.output;
  }
}

}  // namespace
}  // namespace forma::test
