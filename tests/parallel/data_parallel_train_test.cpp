// `forma train` as real processes under `forma launch` on loopback: data parallelism (dp=2) and
// ZeRO-1 must follow the learning curve of one process on the same global batch, resume must
// continue it, and a bad parallel section must be refused with a message naming what it found.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "test_paths.h"
#include "train/train_fixture.h"

namespace forma::test {
namespace {

struct DpRun {
  std::string model;                // fixture folder under hf-tiny
  int processes = 1;
  int master_port = 0;
  std::vector<std::string> sets;    // extra --set arguments
  std::vector<std::string> flags;   // extra forma train flags
};

// Global batch: 2 micro-batches of 2 sequences; one process runs both, each of 2 ranks one.
CommandResult run_dp_training(const std::string& data, const std::string& out, const DpRun& run) {
  std::vector<std::string> args;
  if (run.processes > 1) {
    args = {"launch", "--nproc-per-node", std::to_string(run.processes), "--master-port",
            std::to_string(run.master_port), "--", "forma"};
  }
  args.insert(args.end(), {"train", "--config", tiny_recipe_path()});
  std::vector<std::string> sets{"model.path=" + fixture("hf-tiny/" + run.model + "/config.json"),
                                "data.prefixes=" + data, "output_dir=" + out, "training.micro_batch_size=2",
                                "training.grad_accum_steps=2", "training.max_steps=20", "checkpoint.interval=0"};
  sets.insert(sets.end(), run.sets.begin(), run.sets.end());
  for (auto& s : sets) args.insert(args.end(), {"--set", s});
  args.insert(args.end(), run.flags.begin(), run.flags.end());
  return run_forma(args);
}

double relative_difference(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

// Per-step losses and gradient norms: within 1e-6 relative at the first step, 1e-4 at every step.
void expect_same_curve(const std::vector<LoggedStep>& got, const std::vector<LoggedStep>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_FALSE(want.empty()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].step, want[i].step) << what;
    double tolerance = i == 0 ? 1e-6 : 1e-4;
    EXPECT_LE(relative_difference(got[i].loss, want[i].loss), tolerance)
        << what << " step " << want[i].step << ": loss " << got[i].loss << " vs " << want[i].loss;
    if (want[i].grad_norm == 0) continue;  // validation records
    EXPECT_LE(relative_difference(got[i].grad_norm, want[i].grad_norm), tolerance)
        << what << " step " << want[i].step << ": grad_norm " << got[i].grad_norm << " vs " << want[i].grad_norm;
  }
}

void expect_dp_and_zero_follow_one_process(const std::string& model, int port) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto single = run_dp_training(data, dir + "/single", {model, 1, 0, {}, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto dp = run_dp_training(data, dir + "/dp", {model, 2, port, {"parallel.data_parallel=2"}, {}});
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  auto zero = run_dp_training(data, dir + "/zero", {model, 2, port + 1, {"parallel.zero_stage=1"}, {}});
  ASSERT_EQ(zero.exit_code, 0) << zero.output;

  auto want = logged_steps(dir + "/single/metrics.jsonl");
  ASSERT_EQ(want.size(), 20u);
  // The curve is not flat: a broken synchronisation could not hide behind a constant loss.
  EXPECT_LT(want.back().loss, want.front().loss - 0.5);
  expect_same_curve(logged_steps(dir + "/dp/metrics.jsonl"), want, model + " dp=2");
  expect_same_curve(logged_steps(dir + "/zero/metrics.jsonl"), want, model + " dp=2 zero_stage=1");
  auto want_val = logged_steps(dir + "/single/metrics.jsonl", true);
  ASSERT_EQ(want_val.size(), 2u);  // steps 10 and 20
  expect_same_curve(logged_steps(dir + "/dp/metrics.jsonl", true), want_val, model + " dp=2 val_loss");
  expect_same_curve(logged_steps(dir + "/zero/metrics.jsonl", true), want_val, model + " zero val_loss");
  // Rank 0 alone writes the checkpoint and logs; rank 1 reports only warnings and errors.
  EXPECT_TRUE(std::filesystem::exists(dir + "/zero/checkpoints/step-0000020/manifest.json"));
  EXPECT_TRUE(std::regex_search(zero.output, std::regex(R"(\[rank 0\] \[[0-9:]+\] info step 20/20)"))) << zero.output;
  EXPECT_FALSE(std::regex_search(zero.output, std::regex(R"(\[rank 1\] \[[0-9:]+\] info)"))) << zero.output;
}

TEST(DataParallelTrain, LlamaDp2AndZero1FollowOneProcess) { expect_dp_and_zero_follow_one_process("llama", 29641); }

TEST(DataParallelTrain, MixtralDp2AndZero1FollowOneProcess) {
  expect_dp_and_zero_follow_one_process("mixtral", 29643);
}

TEST(DataParallelTrain, Zero1ResumeContinuesTheCurveUnderAnyLayout) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  const std::vector<std::string> zero{"parallel.zero_stage=1", "training.max_steps=12"};
  auto straight = run_dp_training(data, dir + "/a", {"llama", 2, 29645, zero, {}});
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  auto part1 = run_dp_training(data, dir + "/b", {"llama", 2, 29646, zero, {"--stop-after", "6"}});
  ASSERT_EQ(part1.exit_code, 0) << part1.output;
  std::filesystem::copy(dir + "/b", dir + "/c", std::filesystem::copy_options::recursive |
                                                    std::filesystem::copy_options::copy_symlinks);
  // The same layout: the gathered optimizer state is scattered back exactly, so bit-equal losses.
  auto part2 = run_dp_training(data, dir + "/b", {"llama", 2, 29647, zero, {"--resume"}});
  ASSERT_EQ(part2.exit_code, 0) << part2.output;
  EXPECT_NE(part2.output.find("resumed from"), std::string::npos) << part2.output;
  auto a = logged_losses(dir + "/a/metrics.jsonl");
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(logged_losses(dir + "/b/metrics.jsonl"), a);
  // One process resumes the same checkpoint (the format does not depend on the layout): the same
  // curve up to fp32 summation order.
  auto single = run_dp_training(data, dir + "/c", {"llama", 1, 0, {"training.max_steps=12"}, {"--resume"}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto c = logged_steps(dir + "/c/metrics.jsonl");
  auto want = logged_steps(dir + "/a/metrics.jsonl");
  ASSERT_EQ(c.size(), want.size());
  for (size_t i = 6; i < want.size(); ++i) {
    EXPECT_LE(relative_difference(c[i].loss, want[i].loss), 1e-4) << "step " << want[i].step;
  }
}

TEST(DataParallelTrain, BadParallelSectionsAreNamed) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto alone = run_dp_training(data, dir + "/x", {"llama", 1, 0, {"parallel.data_parallel=2"}, {}});
  EXPECT_EQ(alone.exit_code, 1) << alone.output;
  EXPECT_NE(alone.output.find("data_parallel=2"), std::string::npos) << alone.output;
  EXPECT_NE(alone.output.find("WORLD_SIZE is 1"), std::string::npos) << alone.output;

  auto tp = run_dp_training(data, dir + "/x", {"llama", 1, 0, {"parallel.tensor_parallel=2"}, {}});
  EXPECT_EQ(tp.exit_code, 1) << tp.output;
  EXPECT_NE(tp.output.find("parallel.tensor_parallel: 2 is not yet supported"), std::string::npos) << tp.output;

  auto three = run_dp_training(data, dir + "/x", {"llama", 2, 29648, {"parallel.data_parallel=3"}, {}});
  EXPECT_EQ(three.exit_code, 1) << three.output;
  EXPECT_NE(three.output.find("= 3 processes, but WORLD_SIZE is 2 (from torchrun)"), std::string::npos)
      << three.output;

  auto accum = run_dp_training(data, dir + "/x", {"llama", 2, 29649, {"training.grad_accum_steps=1"}, {}});
  EXPECT_EQ(accum.exit_code, 1) << accum.output;
  EXPECT_NE(accum.output.find("training.grad_accum_steps=1 cannot be divided among data_parallel=2"),
            std::string::npos)
      << accum.output;
}

}  // namespace
}  // namespace forma::test
