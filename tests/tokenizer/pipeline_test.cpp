// tokenizer.json pipeline steps on a tiny hand-made vocabulary, expected ids worked out by hand:
// Split behaviours, Metaspace pre-tokenizer and decoder, added tokens with lstrip/rstrip/single_word.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "forma/tokenizer/hf_tokenizer.h"

namespace forma::tok {
namespace {

using Ids = std::vector<int32_t>;

// Vocabulary: a=0 b=1 ▁=2 -=3 ' '=4 ▁a=5 a-=6 -b=7; merges (by rank): "a -", "- b", "▁ a".
HfTokenizer make(const std::string& extra_fields) {
  std::string text = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "\u2581": 2, "-": 3, " ": 4,
      "\u2581a": 5, "a-": 6, "-b": 7}, "merges": ["a -", "- b", "\u2581 a"]})" + extra_fields + "}";
  return HfTokenizer(nlohmann::json::parse(text), nlohmann::json(), "test tokenizer.json");
}

std::string split(const std::string& behavior) {
  return R"(, "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": ")" + behavior + R"("})";
}

TEST(HfPipeline, SplitBehaviours) {
  // Without a pre-tokenizer "a-b" is one word: "a -" has the lower rank -> [a-, b].
  EXPECT_EQ(make("").encode("a-b"), (Ids{6, 1}));
  EXPECT_EQ(make(split("Removed")).encode("a-b"), (Ids{0, 1}));
  EXPECT_EQ(make(split("Isolated")).encode("a-b"), (Ids{0, 3, 1}));
  EXPECT_EQ(make(split("MergedWithPrevious")).encode("a-b"), (Ids{6, 1}));
  EXPECT_EQ(make(split("MergedWithNext")).encode("a-b"), (Ids{0, 7}));
  // Contiguous keeps "--" as one word; no merge joins "-" "-".
  EXPECT_EQ(make(split("Contiguous")).encode("a--b"), (Ids{0, 3, 3, 1}));
}

TEST(HfPipeline, MetaspacePreTokenizerAndDecoder) {
  auto tok = make(R"(, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
                     "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"})");
  // "a a" -> "▁a▁a" -> words "▁a", "▁a".
  EXPECT_EQ(tok.encode("a a"), (Ids{5, 5}));
  EXPECT_EQ(tok.decode({5, 5}), "a a");
  EXPECT_EQ(tok.decode({2, 5}), " a");  // only the first leading space is the prepended one
}

TEST(HfPipeline, AddedTokensStripAndSingleWord) {
  auto strip = make(R"(, "added_tokens": [{"id": 8, "content": "<x>", "lstrip": true, "rstrip": true, "special": true}])");
  EXPECT_EQ(strip.encode("a <x> b"), (Ids{0, 8, 1}));
  auto plain = make(R"(, "added_tokens": [{"id": 8, "content": "<x>", "special": true}])");
  EXPECT_EQ(plain.encode("a <x> b"), (Ids{0, 4, 8, 4, 1}));
  EXPECT_EQ(plain.decode({0, 8, 1}, /*skip_special_tokens=*/true), "a b");  // no decoder: joined by spaces
  auto word = make(R"(, "added_tokens": [{"id": 8, "content": "ab", "single_word": true, "normalized": false}])");
  EXPECT_EQ(word.encode("ab a"), (Ids{8, 4, 0}));
  EXPECT_EQ(word.encode("aab"), (Ids{0, 0, 1}));  // inside a word: not the added token
  EXPECT_EQ(word.vocab_size(), 9);
}

TEST(HfPipeline, MergesInListForm) {
  auto tok = HfTokenizer(nlohmann::json::parse(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                                                   "merges": [["a", "b"]]}})"),
                         nlohmann::json(), "list-form tokenizer.json");
  EXPECT_EQ(tok.encode("abab"), (Ids{2, 2}));
}

}  // namespace
}  // namespace forma::tok
