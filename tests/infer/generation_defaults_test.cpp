// generation_config.json as HF reads it: greedy unless do_sample, HF's top_k default of 50 when
// sampling, eos_token_id as one id or a list, errors naming the file and field.
#include "forma/infer/generation_defaults.h"

#include <gtest/gtest.h>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "piece_tokenizer.h"
#include "test_paths.h"

namespace forma::infer {
namespace {

GenerationConfig from_json(const std::string& text) {
  GenerationConfig config;
  apply_generation_config_json(nlohmann::json::parse(text), "generation_config.json", &config);
  return config;
}

TEST(GenerationDefaults, Llama2StyleSamplingConfig) {
  // The fields of Llama-2-7b-chat-hf's generation_config.json.
  auto c = from_json(R"({"bos_token_id": 1, "do_sample": true, "eos_token_id": 2, "max_length": 4096,
                         "pad_token_id": 0, "temperature": 0.6, "top_p": 0.9})");
  EXPECT_DOUBLE_EQ(c.sampling.temperature, 0.6);
  EXPECT_DOUBLE_EQ(c.sampling.top_p, 0.9);
  EXPECT_EQ(c.sampling.top_k, 50);  // HF's default when sampling
  EXPECT_EQ(c.eos_ids, (std::vector<int32_t>{2}));
}

TEST(GenerationDefaults, GreedyWithoutDoSampleAndEosList) {
  auto c = from_json(R"({"temperature": 0.7, "eos_token_id": [128001, 128008, 128009],
                         "max_new_tokens": 7, "repetition_penalty": 1.1, "stop_strings": "END"})");
  EXPECT_TRUE(c.sampling.greedy());
  EXPECT_EQ(c.eos_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.max_new_tokens, 7);
  EXPECT_DOUBLE_EQ(c.sampling.repetition_penalty, 1.1);
  EXPECT_EQ(c.stop_strings, (std::vector<std::string>{"END"}));
}

TEST(GenerationDefaults, WrongFieldsNameFileAndField) {
  auto expect_error = [](const std::string& text, const std::string& field) {
    try {
      from_json(text);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("generation_config.json"), std::string::npos) << what;
      EXPECT_NE(what.find(field), std::string::npos) << what;
    }
  };
  expect_error(R"({"do_sample": true, "temperature": "hot"})", "temperature");
  expect_error(R"({"do_sample": true, "top_p": 1.5})", "top_p");
  expect_error(R"({"eos_token_id": [1, -2]})", "eos_token_id");
  expect_error(R"({"max_new_tokens": 2.5})", "max_new_tokens");
  expect_error(R"({"do_sample": "yes"})", "do_sample");
  expect_error(R"({"stop_strings": [""]})", "stop_strings");
}

TEST(GenerationDefaults, EosFallsBackToConfigThenTokenizer) {
  const std::string dir = test::scratch_dir();
  ModelConfig model_config;
  test::PieceTokenizer tok(10, {});  // no EOS
  EXPECT_TRUE(load_generation_defaults(dir, model_config, &tok).eos_ids.empty());
  model_config.eos_token_id = {5};
  auto c = load_generation_defaults(dir, model_config, &tok);
  EXPECT_EQ(c.eos_ids, (std::vector<int32_t>{5}));
  EXPECT_TRUE(c.sampling.greedy());
  write_file_atomic(dir + "/generation_config.json", R"({"eos_token_id": 7})");
  EXPECT_EQ(load_generation_defaults(dir, model_config, &tok).eos_ids, (std::vector<int32_t>{7}));
  write_file_atomic(dir + "/generation_config.json", "{not json");
  EXPECT_THROW(load_generation_defaults(dir, model_config, &tok), Error);
}

}  // namespace
}  // namespace forma::infer
