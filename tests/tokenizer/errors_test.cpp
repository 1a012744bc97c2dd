// Malformed tokenizer files give a forma::Error that names the file and what is wrong.
#include <gtest/gtest.h>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/tokenizer/tiktoken.h"
#include "forma/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace forma::tok {
namespace {

// Loads `content` written as `name` and expects an error mentioning the path and every fragment.
void expect_load_error(const std::string& name, const std::string& content, const std::vector<std::string>& fragments) {
  std::string path = test::scratch_dir() + "/" + name;
  write_file_atomic(path, content);
  try {
    load_tokenizer(path);
    ADD_FAILURE() << "no error for " << content;
  } catch (const forma::Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    for (const auto& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << message << " lacks " << f;
  }
}

const char* const kTinyModel = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

TEST(TokenizerErrors, BadJson) { expect_load_error("tokenizer.json", "{\"model\": [1, 2", {"not valid JSON"}); }

TEST(TokenizerErrors, MissingModel) { expect_load_error("tokenizer.json", R"({"version": "1.0"})", {"model"}); }

TEST(TokenizerErrors, UnknownModelType) {
  expect_load_error("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})", {"Unigram"});
}

TEST(TokenizerErrors, UnknownPreTokenizer) {
  expect_load_error("tokenizer.json", std::string("{") + kTinyModel + R"(, "pre_tokenizer": {"type": "Mystery"}})",
                    {"pre_tokenizer", "Mystery"});
}

TEST(TokenizerErrors, MergeOfUnknownToken) {
  expect_load_error("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]}})",
                    {"merges[0]"});
}

TEST(TokenizerErrors, BadRegex) {
  expect_load_error("tokenizer.json",
                    std::string("{") + kTinyModel +
                        R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}})",
                    {"regex"});
}

TEST(TokenizerErrors, BadAddedToken) {
  expect_load_error("tokenizer.json", std::string("{") + kTinyModel + R"(, "added_tokens": [{"id": 5}]})",
                    {"added_tokens[0]", "content"});
}

TEST(TokenizerErrors, BadTiktokenLine) {
  expect_load_error("cl100k_base.tiktoken", "IQ== 0\nnot-base64! 1\n", {":2:"});
}

TEST(TokenizerErrors, NotASentencePieceModel) {
  expect_load_error("tokenizer.model", "this is not a protobuf", {"SentencePiece"});
}

TEST(TokenizerErrors, UnknownFileAndMissingPath) {
  expect_load_error("weights.bin", "x", {"unknown tokenizer file"});
  EXPECT_THROW(load_tokenizer(test::scratch_dir() + "/nothing-here"), forma::Error);
}

TEST(TokenizerErrors, DecodeOfOutOfRangeId) {
  std::string path = test::scratch_dir() + "/tokenizer.json";
  write_file_atomic(path, std::string("{") + kTinyModel + "}");
  auto tok = load_tokenizer(path);
  EXPECT_EQ(tok->encode("ab"), std::vector<int32_t>{2});
  EXPECT_THROW(tok->decode({7}), forma::Error);
}

// Tokenizer files are untrusted: ids must be sane before any table is sized by them.
TEST(TokenizerErrors, EmptyVocabularyIsAnError) {
  // Used to load, drop every character of the text and exit 0.
  expect_load_error("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})", {"model.vocab", "empty"});
  expect_load_error("tokenizer.json",
                    R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
                        "added_tokens": [{"id": 0, "content": "<s>", "special": true}]})",
                    {"model.vocab", "empty"});
}

TEST(TokenizerErrors, IdsBeyondInt32AreNamedNotWrapped) {
  const std::string too_big = std::to_string(int64_t{1} << 31);  // wrapped to a "negative id" before
  expect_load_error("tokenizer.json",
                    R"({"model": {"type": "BPE", "vocab": {"a": 0, "huge": )" + too_big + R"(}, "merges": []}})",
                    {"'huge'", too_big});
  expect_load_error("tokenizer.json",
                    std::string("{") + kTinyModel + R"(, "added_tokens": [{"id": )" + too_big +
                        R"(, "content": "<big>", "special": true}]})",
                    {"added_tokens[0]", "'<big>'", too_big});
  expect_load_error("tokenizer.json",
                    R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 18446744073709551615}, "merges": []}})",
                    {"'b'", "18446744073709551615"});
  expect_load_error("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "neg": -3}, "merges": []}})",
                    {"'neg'", "-3"});
}

TEST(TokenizerErrors, IdsFarBeyondTheVocabularyAreRefused) {
  // An id of 10^9 sized a 10^9-entry table (std::bad_alloc, with no file named) before.
  expect_load_error("tokenizer.json",
                    R"({"model": {"type": "BPE", "vocab": {"a": 0, "far": 1000000000}, "merges": []}})",
                    {"'far'", "1000000000"});
  expect_load_error("tokenizer.json",
                    std::string("{") + kTinyModel + R"(, "added_tokens": [{"id": 1000000000, "content": "<far>"}]})",
                    {"'<far>'", "1000000000"});
  // Below kMaxTokenId but with nothing in between: the table would be millions of empty slots.
  const std::string sparse = std::to_string(kMaxTokenId);
  expect_load_error("tokenizer.json",
                    R"({"model": {"type": "BPE", "vocab": {"a": 0, "sparse": )" + sparse + R"(}, "merges": []}})",
                    {"'sparse'", sparse, "far beyond"});
  expect_load_error("tokenizer.json",
                    std::string("{") + kTinyModel + R"(, "added_tokens": [{"id": )" + sparse + R"(, "content": "<s>"}]})",
                    {"'<s>'", sparse, "far beyond"});
  // A post-processor may only name ids of the vocabulary.
  expect_load_error("tokenizer.json",
                    std::string("{") + kTinyModel +
                        R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}},
                        {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [3000000000]}}}})",
                    {"post_processor", "3000000000"});
  expect_load_error("cl100k_base.tiktoken", "IQ== 0\nIg== 999999999\n", {":2:", "999999999"});
  expect_load_error("cl100k_base.tiktoken", "IQ== 0\nIg== " + sparse + "\n", {"far beyond", sparse});
}

// Holes in the ids are fine as real tokenizers have them (added tokens after a padded vocabulary).
TEST(TokenizerErrors, IdsWithHolesStillLoad) {
  std::string path = test::scratch_dir() + "/tokenizer.json";
  write_file_atomic(path, std::string("{") + kTinyModel +
                              R"(, "added_tokens": [{"id": 50000, "content": "<|end|>", "special": true}]})");
  auto tok = load_tokenizer(path);
  EXPECT_EQ(tok->vocab_size(), 50001);
  EXPECT_EQ(tok->encode("ab<|end|>"), (std::vector<int32_t>{2, 50000}));
}

}  // namespace
}  // namespace forma::tok
