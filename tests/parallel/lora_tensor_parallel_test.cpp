// LoRA and SFT under tensor parallelism, as real processes under `forma launch` (Gloo on loopback):
// adapters on column-parallel (q/k/v, gate/up) and row-parallel (o, down) layers must follow the
// one-process curve within the tensor-parallel tolerances (expect_same_curve), write the same
// PEFT adapter (gathered whole) as one process, and resume across layouts (tp=2 -> one process
// and back) on the same curve. SFT data (packed rows) under tp=2 follows one process too.
#include <gtest/gtest.h>

#include "forma/data/sft_dataset.h"
#include "forma/model/tensor_io.h"
#include "forma/train/dist_checkpoint_reader.h"
#include "parallel/parallel_training.h"

namespace forma::test {
// Named, not anonymous: the unity build compiles several test files as one unit.
namespace lora_tensor_parallel_test {

// No dropout: a one-process run and a tp run would draw their masks in other orders. Every linear
// layer of the blocks adapted: both column- and row-parallel ones.
const std::vector<std::string> kLora{
    "lora.r=4", "lora.alpha=8",
    "lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]", "optimizer.lr=0.01"};
const std::string kTp2 = "parallel.tensor_parallel=2";

std::vector<std::string> with(std::vector<std::string> sets, const std::vector<std::string>& more) {
  sets.insert(sets.end(), more.begin(), more.end());
  return sets;
}

std::string adapter_file(const std::string& out, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%07d", step);
  return out + "/checkpoints/" + name + "/adapter_model.safetensors";
}

// Both adapters hold the same tensors (names and shapes), each within `tolerance` of the other.
void expect_same_adapter(const std::string& got_path, const std::string& want_path, double tolerance) {
  auto got = load_tensors(got_path);
  auto want = load_tensors(want_path);
  ASSERT_EQ(got.size(), want.size()) << got_path;
  ASSERT_EQ(want.size(), 2u * 7u * 2u);  // A and B of 7 layers in each of 2 blocks
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const auto& g = got.at(name);
    ASSERT_EQ(g.sizes(), w.sizes()) << name;
    EXPECT_LE((g - w).abs().max().item<double>(), tolerance)
        << got_path << " " << name << " (largest |value| " << w.abs().max().item<double>() << ")";
  }
}

void expect_resumed_on_curve(const std::string& metrics, const std::vector<LoggedStep>& want, const std::string& what) {
  auto got = logged_steps(metrics);
  ASSERT_EQ(got.size(), 10u) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].step, want[i + 10].step) << what;
    EXPECT_LE(relative_difference(got[i].loss, want[i + 10].loss), 1e-4) << what << " step " << got[i].step;
    EXPECT_LE(relative_difference(got[i].grad_norm, want[i + 10].grad_norm), 1e-4) << what << " step " << got[i].step;
  }
}

TEST(LoraTensorParallelTrain, FollowsOneProcessAndWritesTheSameAdapter) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto single = run_parallel_training(data, dir + "/single", {"llama", 1, 0, kLora, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  EXPECT_NE(single.output.find("LoRA: 14 layers adapted"), std::string::npos) << single.output;
  auto want = logged_steps(dir + "/single/metrics.jsonl");
  ASSERT_EQ(want.size(), 20u);
  struct Layout {
    std::string name;
    ParallelRun run;
  };
  std::vector<Layout> layouts{
      {"tp=2", {"llama", 2, 0, with(kLora, {kTp2}), {}}},
      {"dp=2 x tp=2 sequence_parallel zero_stage=1",
       {"llama", 4, 0,
        with(kLora, {kTp2, "parallel.data_parallel=2", "parallel.sequence_parallel=true", "parallel.zero_stage=1"}),
        {}}},
  };
  for (size_t i = 0; i < layouts.size(); ++i) {
    const auto out = dir + "/layout" + std::to_string(i);
    auto r = run_parallel_training(data, out, layouts[i].run);
    ASSERT_EQ(r.exit_code, 0) << layouts[i].name << "\n" << r.output;
    EXPECT_NE(r.output.find("tensor_parallel=2"), std::string::npos) << r.output;
    expect_same_curve(logged_steps(out + "/metrics.jsonl"), want, "LoRA " + layouts[i].name);
    // The adapter of the last step, gathered whole, in PEFT's format.
    expect_same_adapter(adapter_file(out, 20), adapter_file(dir + "/single", 20), 1e-5);
  }
}

TEST(LoraTensorParallelTrain, ResumesAcrossLayouts) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto single = run_parallel_training(data, dir + "/single", {"llama", 1, 0, kLora, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto want = logged_steps(dir + "/single/metrics.jsonl");
  ASSERT_EQ(want.size(), 20u);

  // tp=2 stops after step 10; one process continues its checkpoint.
  auto tp_first = run_parallel_training(data, dir + "/tp", {"llama", 2, 0, with(kLora, {kTp2}), {"--stop-after", "10"}});
  ASSERT_EQ(tp_first.exit_code, 0) << tp_first.output;
  auto to_one = run_parallel_training(data, dir + "/tp-to-one",
                                      {"llama", 1, 0, kLora, {"--resume", dir + "/tp/checkpoints/step-0000010"}});
  ASSERT_EQ(to_one.exit_code, 0) << to_one.output;
  expect_resumed_on_curve(dir + "/tp-to-one/metrics.jsonl", want, "tp=2 -> one process");

  // One process stops after step 10; tp=2 continues its checkpoint.
  auto one_first = run_parallel_training(data, dir + "/one", {"llama", 1, 0, kLora, {"--stop-after", "10"}});
  ASSERT_EQ(one_first.exit_code, 0) << one_first.output;
  expect_same_adapter(adapter_file(dir + "/tp", 10), adapter_file(dir + "/one", 10), 1e-5);
  auto to_tp = run_parallel_training(data, dir + "/one-to-tp",
                                     {"llama", 2, 0, with(kLora, {kTp2}),
                                      {"--resume", dir + "/one/checkpoints/step-0000010"}});
  ASSERT_EQ(to_tp.exit_code, 0) << to_tp.output;
  expect_resumed_on_curve(dir + "/one-to-tp/metrics.jsonl", want, "one process -> tp=2");

  // Offline: `forma ckpt reshard` lays the one-process checkpoint out as the tp=2 trainer writes its
  // own (the adapters' pieces following their base layers), and tp=2 resumes it on the curve.
  auto reshard = run_forma("ckpt reshard '" + dir + "/one/checkpoints/step-0000010' --to '" + dir +
                           "/resharded' --set parallel.tensor_parallel=2");
  ASSERT_EQ(reshard.exit_code, 0) << reshard.output;
  train::DistCheckpointReader resharded(dir + "/resharded", true), written(dir + "/tp/checkpoints/step-0000010", true);
  int adapters = 0;
  for (const auto& [name, entry] : written.metadata().tensors) {
    if (name.find(".lora_") == std::string::npos) continue;
    ++adapters;
    const auto& other = resharded.metadata().tensors.at(name).pieces;
    ASSERT_EQ(other.size(), entry.pieces.size()) << name;
    for (size_t i = 0; i < other.size(); ++i) {
      EXPECT_EQ(other[i].file, entry.pieces[i].file) << name;
      EXPECT_EQ(other[i].offsets, entry.pieces[i].offsets) << name;
      EXPECT_EQ(other[i].lengths, entry.pieces[i].lengths) << name;
    }
  }
  EXPECT_EQ(adapters, 14 * 2 * 4);  // 14 layers: A and B, each with exp_avg, exp_avg_sq and step
  auto from_resharded = run_parallel_training(data, dir + "/resharded-tp",
                                              {"llama", 2, 0, with(kLora, {kTp2}), {"--resume", dir + "/resharded"}});
  ASSERT_EQ(from_resharded.exit_code, 0) << from_resharded.output;
  expect_resumed_on_curve(dir + "/resharded-tp/metrics.jsonl", want, "resharded one process -> tp=2");
}

// On the CPU torch::dropout draws a bernoulli mask of the input's shape from the default generator.
// Every tp rank draws what one process draws in the same order: a column-parallel layer's input is
// whole (or gathered), and a row-parallel layer draws the mask of all its input features and keeps
// its slice. So LoRA dropout under tp follows the one-process curve too.
TEST(LoraTensorParallelTrain, DropoutDrawsTheOneProcessMasks) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto sets = with(kLora, {"lora.dropout=0.2"});
  auto single = run_parallel_training(data, dir + "/single", {"llama", 1, 0, sets, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto tp = run_parallel_training(data, dir + "/tp", {"llama", 2, 0, with(sets, {kTp2, "parallel.sequence_parallel=true"}), {}});
  ASSERT_EQ(tp.exit_code, 0) << tp.output;
  expect_same_curve(logged_steps(dir + "/tp/metrics.jsonl"), logged_steps(dir + "/single/metrics.jsonl"),
                    "LoRA dropout tp=2 sequence_parallel");
}

TEST(LoraTensorParallelTrain, AnAdapterOnTheVocabularyParallelHeadIsRefusedByName) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto r = run_parallel_training(data, dir + "/tp", {"llama", 2, 0,
                                                     {"lora.r=4", "lora.target_modules=[q_proj, lm_head]", kTp2}, {}});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("LoRA on lm_head is not supported"), std::string::npos) << r.output;
}

// 60 samples of 4 to 43 ids below the tiny models' 320, trained on a varying share of their tokens
// (as in sft_data_parallel_test.cpp).
std::string write_sft_dataset(const std::string& dir) {
  data::SftDatasetWriter writer(dir + "/sft", data::TokenDType::uint16);
  for (int k = 0; k < 60; ++k) {
    data::SftTokens s;
    const int length = 4 + (k * 17) % 40;
    for (int t = 0; t < length; ++t) {
      s.ids.push_back((k * 7 + t * (k % 5 + 1)) % 320);
      s.mask.push_back(t >= length / (k % 3 + 2));
    }
    writer.add(s);
  }
  writer.finish();
  return dir + "/sft";
}

TEST(SftTensorParallel, PackedTp2FollowsOneProcess) {
  auto dir = scratch_dir();
  auto data = write_sft_dataset(dir);
  const std::string packing = "data.packing=true";
  auto single = run_parallel_training(data, dir + "/single", {"llama", 1, 0, {packing}, {}});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto want = logged_steps(dir + "/single/metrics.jsonl");
  ASSERT_EQ(want.size(), 20u);
  for (auto [name, sp] : {std::pair{"tp", "parallel.sequence_parallel=false"},
                         std::pair{"tp-sp", "parallel.sequence_parallel=true"}}) {
    auto r = run_parallel_training(data, dir + "/" + name, {"llama", 2, 0, {packing, kTp2, sp}, {}});
    ASSERT_EQ(r.exit_code, 0) << name << "\n" << r.output;
    expect_same_curve(logged_steps(dir + "/" + name + "/metrics.jsonl"), want, std::string("SFT ") + name);
    expect_same_curve(logged_steps(dir + "/" + name + "/metrics.jsonl", true),
                      logged_steps(dir + "/single/metrics.jsonl", true), std::string("SFT val_loss ") + name);
  }
}

}  // namespace lora_tensor_parallel_test
}  // namespace forma::test
