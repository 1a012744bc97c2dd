// Byte-level BPE training: merges checked by hand on a tiny corpus, then a real run on Moby Dick
// whose tokenizer.json is read back by the loader and round-trips.
#include <gtest/gtest.h>

#include <filesystem>

#include "forma/core/files.h"
#include "forma/tokenizer/bpe_trainer.h"
#include "forma/tokenizer/hf_tokenizer.h"
#include "forma/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace forma::tok {
namespace {

TEST(BpeTrainer, MergesMatchHandComputation) {
  // "aaabdaaabac" is one word. Pair counts: aa 4, ab 2, others 1 -> merge (a,a); the word becomes
  // aa a b d aa a b a c: (aa,a) 2 and (a,b) 2 tie, the smaller pair (a,b) goes first (ids: a < aa);
  // then aa ab d aa ab a c: (aa,ab) 2; after that every pair occurs once (< min_frequency 2).
  BpeTrainOptions options;
  options.vocab_size = 1000;
  options.show_progress = false;
  auto json = train_bpe({"aaabdaaabac"}, options);
  nlohmann::json expected = nlohmann::json::parse(R"([["a","a"],["a","b"],["aa","ab"]])");
  EXPECT_EQ(nlohmann::json(json["model"]["merges"]), expected);
  EXPECT_EQ(json["model"]["vocab"]["aaab"], 1 + 256 + 2);
  EXPECT_EQ(json["added_tokens"][0]["content"], "<|endoftext|>");
}

TEST(BpeTrainer, CountsWordsAcrossTextsButNotSpecialTokens) {
  // Words: "the" x1, " the" x2 (GPT-2 split keeps the space), the special tokens are not text.
  // Pairs: (t,h) 3, (h,e) 3, (' ',t) 2: the tie goes to the smaller pair (h,e) (ids: e < h < t),
  // then (t,he) 3, then (' ',the) 2. Counting "<|endoftext|>" as text would add pairs seen twice
  // (e,n), (n,d), ... from its two occurrences.
  BpeTrainOptions options;
  options.vocab_size = 1000;
  options.show_progress = false;
  auto json = train_bpe({"the the", " the<|endoftext|><|endoftext|>"}, options);
  nlohmann::json expected = nlohmann::json::parse("[[\"h\",\"e\"],[\"t\",\"he\"],[\"\u0120\",\"the\"]]");
  EXPECT_EQ(nlohmann::json(json["model"]["merges"]), expected);
}

TEST(BpeTrainer, TrainsOnMobyDickAndLoadsBack) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(test::book("")))
    if (e.path().extension() == ".txt") files.push_back(e.path().string());
  ASSERT_FALSE(files.empty());
  BpeTrainOptions options;
  options.vocab_size = 4096;
  options.show_progress = false;
  std::string dir = test::scratch_dir() + "/trained";
  save_trained_tokenizer(train_bpe_files(files, options), dir, 1024);
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->vocab_size(), 4096);
  EXPECT_EQ(tok->eos_id(), 0);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->encode("<|endoftext|>"), std::vector<int32_t>{0});
  std::string text = read_file(files.front());
  auto ids = tok->encode(text);
  EXPECT_EQ(tok->decode(ids), text);
  // A 4096-token BPE on its own training text needs well under one token per 3 bytes.
  EXPECT_LT(static_cast<double>(ids.size()), text.size() / 3.0);
  std::string odd = "Ahab \xF0\x9F\x90\x8B \xE7\x99\xBD\xE9\xAF\xA8 \xFF\xC3!";
  EXPECT_EQ(tok->decode(tok->encode(odd)), odd);
  auto config = nlohmann::json::parse(read_file(dir + "/tokenizer_config.json"));
  EXPECT_EQ(config["model_max_length"], 1024);
  EXPECT_EQ(config["eos_token"], "<|endoftext|>");
}

}  // namespace
}  // namespace forma::tok
