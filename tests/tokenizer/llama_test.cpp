// Llama 2 (SentencePiece tokenizer.model), Mistral 7B (tokenizer.json with byte fallback) and
// Llama 3 (tokenizer.json, byte-level with ignore_merges) against ids published by others:
// llama-tokenizer-js's own test cases (read from the package), mistral-tokenizer-js's test cases
// (imoneoi/mistral-tokenizer, src/tokenizer.test.ts) and Meta's llama3 repo (llama/test_tokenizer.py).
#include <gtest/gtest.h>

#include "forma/core/files.h"
#include "forma/tokenizer/hf_tokenizer.h"
#include "forma/tokenizer/sentencepiece_tokenizer.h"
#include "test_paths.h"
#include "tokenizer_test_util.h"

namespace forma::tok {
namespace {

using Ids = std::vector<int32_t>;

// testCase("text", [ids]) calls in llama-tokenizer.js; the text is a JavaScript string literal.
std::vector<std::pair<std::string, Ids>> llama_js_cases() {
  std::string js = read_file(test::asset("llama-tokenizer-js/llama-tokenizer.js"));
  std::vector<std::pair<std::string, Ids>> cases;
  for (size_t pos = 0; (pos = js.find("testCase(", pos)) != std::string::npos;) {
    pos += 9;
    char quote = js[pos];
    if (quote != '"' && quote != '\'') continue;  // the definition `function testCase(inputString, ...`
    std::string text;
    for (++pos; js[pos] != quote; ++pos) {
      if (js[pos] != '\\') {
        text += js[pos];
        continue;
      }
      char e = js[++pos];
      text += e == 'n' ? '\n' : e == 't' ? '\t' : e;
    }
    size_t open = js.find('[', pos), close = js.find(']', open);
    Ids ids;
    std::string list = js.substr(open + 1, close - open - 1);
    for (size_t p = 0; p < list.size();) {
      if (std::isdigit(static_cast<unsigned char>(list[p]))) {
        size_t used = 0;
        ids.push_back(std::stoi(list.substr(p), &used));
        p += used;
      } else {
        ++p;
      }
    }
    cases.emplace_back(text, ids);
    pos = close;
  }
  return cases;
}

TEST(SentencePieceLlama2, MatchesLlamaTokenizerJsCases) {
  auto tok = load_sentencepiece_from_bytes(test::llama2_model_bytes(), "llama2 tokenizer.model");
  auto cases = llama_js_cases();
  ASSERT_EQ(cases.size(), 12u);  // the package's 12 encode cases, one of them 400+ tokens long
  for (const auto& [text, ids] : cases) {
    EXPECT_EQ(tok->encode(text, /*add_special_tokens=*/true), ids) << text;
    EXPECT_EQ(tok->decode(ids, /*skip_special_tokens=*/true), text) << text;
  }
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("<s>grabbed</s>"), (Ids{1, 2646, 1327, 287, 2}));
}

// mistral-tokenizer-js (imoneoi/mistral-tokenizer) test cases: encode adds BOS, as HF does.
const std::vector<std::pair<std::string, Ids>> kMistralCases = {
    {"grabbed", {1, 13300}},
    {" grabbed", {1, 28705, 13300}},
    {"           grabbed", {1, 17422, 13300}},
    {"\n", {1, 28705, 13}},
    {" \n", {1, 259, 13}},
    {"\ttabs\t\t\t\tout here", {1, 28705, 12, 24856, 12, 12, 12, 12, 406, 1236}},
    {"ax\n####\nboo", {1, 6056, 13, 2000, 13, 1798, 28709}},
    {"\xE9\x95\x87", {1, 28705, 29780}},                                         // 镇
    {"\xF0\x9F\xA6\x99", {1, 28705, 243, 162, 169, 156}},                        // 🦙
    {"\xF0\x9F\xA6\x99\xEA\x99\x8A", {1, 28705, 243, 162, 169, 156, 237, 156, 141}},  // 🦙Ꙋ
    {"\xEA\x99\x8A\xF0\x9F\xA6\x99", {1, 28705, 237, 156, 141, 243, 162, 169, 156}},  // Ꙋ🦙
};

TEST(HfTokenizerMistral, MatchesMistralTokenizerJsCases) {
  auto tok = load_hf_tokenizer(test::asset("tokenizer-llama2/models/tokenizer.json"));
  for (const auto& [text, ids] : kMistralCases) {
    EXPECT_EQ(tok->encode(text, /*add_special_tokens=*/true), ids) << text;
    EXPECT_EQ(tok->decode(ids, /*skip_special_tokens=*/true), text) << text;
  }
  // HF's documented output for Mistral-7B: "Hello world" -> [1, 22557, 1526].
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{1, 22557, 1526}));
  EXPECT_EQ(tok->decode({1, 22557, 1526}), "<s> Hello world");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->vocab_size(), 32000);
}

TEST(HfTokenizerLlama3, MatchesMetaTestTokenizer) {
  auto tok = load_hf_tokenizer(test::asset("tokenizer-llama3/models/tokenizer.json"));
  EXPECT_EQ(tok->encode("This is a test sentence."), (Ids{2028, 374, 264, 1296, 11914, 13}));
  std::string with_specials = "<|begin_of_text|>This is a test sentence.<|end_of_text|>";
  Ids ids{128000, 2028, 374, 264, 1296, 11914, 13, 128001};
  EXPECT_EQ(tok->encode(with_specials), ids);
  EXPECT_EQ(tok->decode(ids), with_specials);
  EXPECT_EQ(tok->decode(ids, /*skip_special_tokens=*/true), "This is a test sentence.");
  // ChatFormat.encode_dialog_prompt of Meta's test, written out with its special tokens.
  std::string dialog =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nThis is a test sentence.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nThis is a response.<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(tok->encode(dialog), (Ids{128000, 128006, 9125, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009,
                                      128006, 882, 128007, 271, 2028, 374, 264, 2077, 13, 128009, 128006, 78191,
                                      128007, 271}));
  // b4rtaz/distributed-llama's tokenizer test (Llama 3.2 vocabulary, same ids below 128256).
  EXPECT_EQ(tok->encode("<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>"),
            (Ids{128006, 882, 128007, 271, 15339, 128009}));
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eos_id(), 128001);
}

}  // namespace
}  // namespace forma::tok
