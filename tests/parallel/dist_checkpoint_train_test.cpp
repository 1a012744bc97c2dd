// Distributed checkpoints in real runs under `forma launch` on loopback: a run saved under dp=2 with
// ZeRO-1 resumes under tp=2, which saves again and resumes in one process, all on the learning
// curve of one process that never stopped; a tp=2 checkpoint, merged, generates in one process what
// the one-process run's checkpoint generates.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "parallel/parallel_training.h"

// A named namespace: unity builds compile several test files as one unit.
namespace forma::dist_checkpoint_train_test {

using test::ParallelRun;

// The steps of `metrics` after `after`.
std::vector<test::LoggedStep> steps_after(const std::string& metrics, int64_t after, bool validation = false) {
  std::vector<test::LoggedStep> out;
  for (const auto& s : test::logged_steps(metrics, validation)) {
    if (s.step > after) out.push_back(s);
  }
  return out;
}

nlohmann::json checkpoint_info(const std::string& dir) {
  auto r = test::run_forma("ckpt info --json '" + dir + "'", /*with_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? nlohmann::json::parse(r.output) : nlohmann::json();
}

int64_t pieces_of(const nlohmann::json& info, const std::string& tensor) {
  for (const auto& t : info["tensors"]) {
    if (t["name"] == tensor) return t["pieces"].get<int64_t>();
  }
  return -1;
}

TEST(DistCheckpointTrain, Dp2ZeroSavedResumesUnderTp2ThenInOneProcess) {
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto single = test::run_parallel_training(data, dir + "/single", {"llama", 1, 0, {}, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const std::string single_metrics = dir + "/single/metrics.jsonl";

  // dp=2 with ZeRO-1 to step 10: data-parallel rank 0 writes the gathered state.
  auto dp = test::run_parallel_training(data, dir + "/dp",
                                        {"llama", 2, 0, {"parallel.data_parallel=2", "parallel.zero_stage=1"},
                                         {"--stop-after", "10"}});
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  const std::string dp_ckpt = dir + "/dp/checkpoints/step-0000010";
  auto dp_info = checkpoint_info(dp_ckpt);
  EXPECT_EQ(dp_info["layout"]["data_parallel"], 2);
  EXPECT_EQ(dp_info["layout"]["zero_stage"], 1);
  EXPECT_EQ(pieces_of(dp_info, "lm_head.weight"), 1);

  // tp=2 resumes it (each rank reading its halves), runs to step 15 and saves in pieces.
  auto tp = test::run_parallel_training(data, dir + "/tp",
                                        {"llama", 2, 0, {"parallel.tensor_parallel=2"},
                                         {"--resume", dp_ckpt, "--stop-after", "15"}});
  ASSERT_EQ(tp.exit_code, 0) << tp.output;
  EXPECT_NE(tp.output.find("resumed from " + dp_ckpt + " at step 10"), std::string::npos) << tp.output;
  auto want = steps_after(single_metrics, 10);
  want.resize(std::min<size_t>(want.size(), 5));
  test::expect_same_curve(test::logged_steps(dir + "/tp/metrics.jsonl"), want, "dp=2 zero -> tp=2, steps 11-15");
  const std::string tp_ckpt = dir + "/tp/checkpoints/step-0000015";
  auto tp_info = checkpoint_info(tp_ckpt);
  EXPECT_EQ(tp_info["committed"], true);
  EXPECT_EQ(tp_info["layout"]["tensor_parallel"], 2);
  EXPECT_EQ(pieces_of(tp_info, "lm_head.weight"), 2);
  EXPECT_EQ(pieces_of(tp_info, "optim/model.layers.0.self_attn.q_proj.weight.exp_avg"), 2);
  EXPECT_EQ(pieces_of(tp_info, "model.norm.weight"), 1);
  EXPECT_FALSE(std::filesystem::exists(tp_ckpt + "/model.safetensors"));

  // One process resumes the tp=2 checkpoint to step 20.
  auto one = test::run_parallel_training(data, dir + "/one", {"llama", 1, 0, {}, {"--resume", tp_ckpt}});
  ASSERT_EQ(one.exit_code, 0) << one.output;
  test::expect_same_curve(test::logged_steps(dir + "/one/metrics.jsonl"), steps_after(single_metrics, 15),
                          "tp=2 -> one process, steps 16-20");
  test::expect_same_curve(test::logged_steps(dir + "/one/metrics.jsonl", true),
                          steps_after(single_metrics, 15, /*validation=*/true), "tp=2 -> one process, val_loss");
}

TEST(DistCheckpointTrain, Tp2CheckpointMergedGeneratesAsTheOneProcessModel) {
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto single = test::run_parallel_training(data, dir + "/single", {"mixtral", 1, 0, {}, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto tp = test::run_parallel_training(
      data, dir + "/tp", {"mixtral", 2, 0, {"parallel.tensor_parallel=2", "parallel.sequence_parallel=true"}, {}});
  ASSERT_EQ(tp.exit_code, 0) << tp.output;
  test::expect_same_curve(test::logged_steps(dir + "/tp/metrics.jsonl"),
                          test::logged_steps(dir + "/single/metrics.jsonl"), "mixtral tp=2 sequence_parallel");
  const std::string tp_ckpt = dir + "/tp/checkpoints/latest";
  auto merge = test::run_forma("ckpt merge '" + tp_ckpt + "' --to '" + dir + "/merged'");
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  auto expected = test::greedy_ids(dir + "/single/checkpoints/latest", "3,14,15,92,65", 16);
  ASSERT_EQ(expected.size(), 16u);
  EXPECT_EQ(test::greedy_ids(dir + "/merged", "3,14,15,92,65", 16), expected);
}

}  // namespace forma::dist_checkpoint_train_test
