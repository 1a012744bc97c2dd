// ModelConfig: HF field names and per-model_type defaults, gpt2's own names, presets, round trip of
// unknown keys, and errors that name the file and the field.
#include "forma/model/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "forma/core/error.h"
#include "test_paths.h"

namespace forma {
namespace {

void expect_error(const nlohmann::json& j, const std::string& words) {
  try {
    parse_model_config(j, "cfg.json");
    FAIL() << "accepted " << j.dump();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  }
}

TEST(ModelConfig, ReadsGpt2FixtureUnderItsOwnNames) {
  ModelConfig c = load_model_config(test::fixture("hf-tiny/gpt2"));
  EXPECT_EQ(c.model_type, "gpt2");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_EQ(c.hidden_act, "gelu_new");
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_TRUE(c.tie_word_embeddings);  // absent key: PretrainedConfig default (README)
  EXPECT_EQ(c.extra["summary_type"], "cls_index");
}

TEST(ModelConfig, ReadsLlama3RopeScalingAndMistralWindow) {
  ModelConfig l = load_model_config(test::fixture("hf-tiny/llama3_rope/config.json"));
  ASSERT_TRUE(l.rope_scaling.has_value());
  EXPECT_EQ(l.rope_scaling->rope_type, "llama3");
  EXPECT_DOUBLE_EQ(l.rope_scaling->factor, 8.0);
  EXPECT_EQ(l.rope_scaling->original_max_position_embeddings, 32);
  EXPECT_TRUE(l.tie_word_embeddings);
  ModelConfig m = load_model_config(test::fixture("hf-tiny/mistral"));
  EXPECT_EQ(m.effective_sliding_window(), 8);
  ModelConfig q = load_model_config(test::fixture("hf-tiny/qwen2"));
  EXPECT_EQ(q.effective_sliding_window(), 0);
  EXPECT_TRUE(q.attention_bias);
  ModelConfig x = load_model_config(test::fixture("hf-tiny/mixtral"));
  EXPECT_EQ(x.num_local_experts, 4);
  EXPECT_EQ(x.num_experts_per_tok, 2);
  EXPECT_DOUBLE_EQ(x.router_aux_loss_coef, 0.001);
}

TEST(ModelConfig, AppliesHfDefaultsPerModelType) {
  ModelConfig llama = parse_model_config({{"model_type", "llama"}}, "cfg.json");
  EXPECT_EQ(llama.hidden_size, 4096);          // LlamaConfig defaults
  EXPECT_EQ(llama.intermediate_size, 11008);
  EXPECT_EQ(llama.num_key_value_heads, 32);    // None -> num_attention_heads
  EXPECT_EQ(llama.head_dim, 128);
  EXPECT_DOUBLE_EQ(llama.norm_eps, 1e-6);
  ModelConfig mistral = parse_model_config({{"model_type", "mistral"}}, "cfg.json");
  EXPECT_EQ(mistral.num_key_value_heads, 8);
  EXPECT_EQ(mistral.effective_sliding_window(), 4096);
  ModelConfig mixtral = parse_model_config({{"model_type", "mixtral"}}, "cfg.json");
  EXPECT_EQ(mixtral.num_local_experts, 8);
  EXPECT_DOUBLE_EQ(mixtral.rope_theta, 1e6);
  ModelConfig gpt2 = parse_model_config({{"model_type", "gpt2"}}, "cfg.json");
  EXPECT_EQ(gpt2.intermediate_size, 4 * 768);  // n_inner None -> 4 * n_embd
  EXPECT_EQ(gpt2.vocab_size, 50257);
  ASSERT_EQ(gpt2.eos_token_id.size(), 1u);
  EXPECT_EQ(gpt2.eos_token_id[0], 50256);
}

TEST(ModelConfig, RoundTripKeepsValuesAndUnknownKeys) {
  for (const char* arch : {"gpt2", "llama", "llama3_rope", "mistral", "qwen2", "mixtral"}) {
    ModelConfig c = load_model_config(test::fixture(std::string("hf-tiny/") + arch));
    ModelConfig again = parse_model_config(to_hf_json(c), "again");
    EXPECT_EQ(to_hf_json(again), to_hf_json(c)) << arch;
    EXPECT_EQ(to_hf_json(c)["transformers_version"], "4.47.1") << arch;
  }
}

TEST(ModelConfig, EosMayBeAList) {
  ModelConfig c = parse_model_config({{"model_type", "llama"}, {"eos_token_id", {128001, 128009}}}, "cfg.json");
  EXPECT_EQ(c.eos_token_id, (std::vector<int64_t>{128001, 128009}));
  EXPECT_EQ(to_hf_json(c)["eos_token_id"], nlohmann::json({128001, 128009}));
}

TEST(ModelConfig, RejectsBadValuesNamingTheField) {
  expect_error({{"model_type", "bert"}}, "model_type");
  expect_error({{"hidden_size", 8}}, "model_type");
  expect_error({{"model_type", "llama"}, {"hidden_size", "big"}}, "hidden_size");
  expect_error({{"model_type", "llama"}, {"num_hidden_layers", 0}}, "num_hidden_layers");
  expect_error({{"model_type", "llama"}, {"num_attention_heads", 6}, {"num_key_value_heads", 4}},
               "num_key_value_heads");
  expect_error({{"model_type", "llama"}, {"hidden_act", "mish"}}, "hidden_act");
  expect_error({{"model_type", "llama"}, {"rope_scaling", {{"rope_type", "su"}, {"factor", 4}}}},
               "rope_scaling.rope_type");
  expect_error({{"model_type", "llama"}, {"rope_scaling", {{"rope_type", "longrope"}, {"short_factor", {1.0}}}}},
               "rope_scaling.long_factor");
  expect_error({{"model_type", "llama"}, {"tie_word_embeddings", "yes"}}, "tie_word_embeddings");
  expect_error({{"model_type", "mixtral"}, {"num_experts_per_tok", 9}}, "num_experts_per_tok");
  expect_error({{"model_type", "gpt2"}, {"scale_attn_by_inverse_layer_idx", true}},
               "scale_attn_by_inverse_layer_idx");
}

// Found by fuzz/fuzz_model_config: a float integer beyond int64 was converted to int64 (undefined
// behaviour), and gpt2's default n_inner, 4 * n_embd, overflowed for a huge n_embd.
TEST(ModelConfig, HugeNumbersAreErrorsNotOverflows) {
  expect_error({{"model_type", "llama"}, {"hidden_size", 1e300}}, "field 'hidden_size' must be an integer");
  expect_error({{"model_type", "llama"}, {"hidden_size", -0x1p64}}, "field 'hidden_size' must be an integer");
  expect_error({{"model_type", "gpt2"}, {"n_embd", int64_t{1} << 62}}, "field 'n_embd' (4611686018427387904) is too large");
  // 2^63 parses as an unsigned JSON integer; read as int64 it wrapped to INT64_MIN (fuzz_model_config).
  expect_error({{"model_type", "gpt2"}, {"n_embd", uint64_t{1} << 63}}, "field 'n_embd' (9223372036854775808) is too large");
  EXPECT_EQ(parse_model_config({{"model_type", "llama"}, {"hidden_size", 64.0}}, "cfg.json").hidden_size, 64);
}

TEST(ModelConfig, LoadsPresetsByName) {
  ModelConfig c = load_model_config("llama-3.1-8b");
  EXPECT_EQ(c.num_key_value_heads, 8);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_THROW(load_model_config("no-such-model"), Error);
}

TEST(ModelConfig, BadJsonFileNamesTheFile) {
  std::string path = test::scratch_dir() + "/config.json";
  std::ofstream(path) << "{\"model_type\": \"llama\",";
  try {
    load_model_config(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace forma
