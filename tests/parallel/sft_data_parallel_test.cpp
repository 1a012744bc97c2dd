// SFT under data parallelism: the step's loss is the sum of token losses over every trained token
// of the global batch divided by their count, so dp=2 (each rank one micro-batch of the step, with
// different numbers of trained tokens) must follow one process that runs both micro-batches. A
// per-rank or per-micro-batch mean would weigh the tokens differently and change the gradient norm.
#include <gtest/gtest.h>

#include "forma/data/sft_dataset.h"
#include "parallel/parallel_training.h"

namespace forma::test {
namespace {

// 60 samples of 4 to 43 ids below the tiny models' 320, trained on a varying share of their tokens
// (some are longer than the recipe's seq_len of 32 and get cut).
std::string write_sft_dataset(const std::string& dir) {
  data::SftDatasetWriter writer(dir + "/sft", data::TokenDType::uint16);
  for (int k = 0; k < 60; ++k) {
    data::SftTokens s;
    const int length = 4 + (k * 17) % 40;
    for (int t = 0; t < length; ++t) {
      s.ids.push_back((k * 7 + t * (k % 5 + 1)) % 320);  // learnable: steps of k % 5 + 1
      s.mask.push_back(t >= length / (k % 3 + 2));
    }
    writer.add(s);
  }
  writer.finish();
  return dir + "/sft";
}

TEST(SftDataParallel, Dp2FollowsOneProcess) {
  auto dir = scratch_dir();
  auto data = write_sft_dataset(dir);
  for (const char* packing : {"data.packing=true", "data.packing=false"}) {
    SCOPED_TRACE(packing);
    const std::string tag = packing[13] == 't' ? "packed" : "padded";
    auto single = run_parallel_training(data, dir + "/single-" + tag, {"llama", 1, 0, {packing}, {}});
    ASSERT_EQ(single.exit_code, 0) << single.output;
    EXPECT_NE(single.output.find("SFT training data"), std::string::npos) << single.output;
    auto dp = run_parallel_training(data, dir + "/dp-" + tag,
                                    {"llama", 2, 0, {packing, "parallel.data_parallel=2"}, {}});
    ASSERT_EQ(dp.exit_code, 0) << dp.output;
    auto want = logged_steps(dir + "/single-" + tag + "/metrics.jsonl");
    EXPECT_EQ(want.size(), 20u);
    expect_same_curve(logged_steps(dir + "/dp-" + tag + "/metrics.jsonl"), want, "SFT dp=2 " + tag);
    expect_same_curve(logged_steps(dir + "/dp-" + tag + "/metrics.jsonl", true),
                      logged_steps(dir + "/single-" + tag + "/metrics.jsonl", true), "SFT dp=2 val_loss " + tag);
  }
}

}  // namespace
}  // namespace forma::test
