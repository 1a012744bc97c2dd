// GPT-NeoX, GPT-J and Cohere beyond the hf-zoo fixture suite: the configurations the fixtures do not
// use (gpt_neox's sequential block in transformers 4's spelling, GPT-J rotating whole heads, Cohere
// with attention biases) against transformers itself (neox_family_reference.py writes the models
// and their logits), the refusals, and LoRA on gpt_neox's per-head fused query_key_value.
#include <gtest/gtest.h>

#include <cstdlib>

#include "forma/core/error.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "forma/model/hf_names.h"
#include "forma/model/tensor_io.h"
#include "forma/peft/lora_model.h"
#include "python_oracle.h"
#include "test_paths.h"

namespace forma {
namespace {

const std::string& reference_dir() { return test::python_oracle_output("neox_family_reference.py"); }

TEST(NeoxFamily, GptNeoxSequentialBlockInTransformersFourSpellingMatchesTransformers) {
  const std::string dir = reference_dir() + "/gpt_neox_sequential";
  ModelConfig c = load_model_config(dir);
  EXPECT_FALSE(c.parallel_block);
  EXPECT_EQ(c.partial_rotary_factor, 0.5);
  EXPECT_EQ(c.rope_theta, 1000.0);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Fused), 1e-4);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Explicit), 1e-4);
  ModelConfig again = parse_model_config(to_hf_json(c), "again");
  EXPECT_EQ(to_hf_json(again), to_hf_json(c));
}

TEST(NeoxFamily, GptjRotatingWholeHeadsMatchesTransformers) {
  const std::string dir = reference_dir() + "/gptj_full_rotary";
  ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.rotary_dim(), c.head_dim);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Fused), 1e-4);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Explicit), 1e-4);
}

TEST(NeoxFamily, CohereWithAttentionBiasMatchesTransformers) {
  const std::string dir = reference_dir() + "/cohere_bias";
  ModelConfig c = load_model_config(dir);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.logit_scale, 0.5);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Fused), 1e-4);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Explicit), 1e-4);
}

TEST(NeoxFamily, RefusesWhatItCannotRunNamingTheField) {
  auto error = [](nlohmann::json j) { return test::error_of([&] { parse_model_config(j, "cfg.json"); }); };
  std::string e = error({{"model_type", "gptj"}, {"tie_word_embeddings", true}});
  EXPECT_NE(e.find("cfg.json: field 'tie_word_embeddings'"), std::string::npos) << e;
  e = error({{"model_type", "gptj"}, {"n_embd", 32}, {"n_head", 4}, {"rotary_dim", 3}});
  EXPECT_NE(e.find("cfg.json: field 'rotary_dim' (3)"), std::string::npos) << e;
  e = error({{"model_type", "cohere"}, {"use_qk_norm", true}});
  EXPECT_NE(e.find("cfg.json: field 'use_qk_norm'"), std::string::npos) << e;
  e = error({{"model_type", "cohere"}, {"logit_scale", 0}});
  EXPECT_NE(e.find("cfg.json: field 'logit_scale'"), std::string::npos) << e;
  e = error({{"model_type", "gpt_neox"}, {"num_key_value_heads", 8}});
  EXPECT_NE(e.find("cfg.json: gpt_neox has hidden_size / num_attention_heads dims per head"), std::string::npos) << e;
}

// Its q, k and v rows interleave per head: LoRA on it is one adapter per part (q, k, v), whose B rows
// PEFT's one lora_B interleaves as the weight does (tests/peft/lora_peft_test.cpp checks the logits).
TEST(NeoxFamily, LoraOnTheInterleavedQueryKeyValueAdaptsEachPart) {
  CausalLM model = load_pretrained(test::fixture("hf-zoo/gpt_neox"));
  EXPECT_TRUE(hf_module_of(model->config(), "model.layers.0.self_attn.k_proj").grouped);
  peft::LoraConfig config;
  config.target_modules = {"query_key_value"};
  EXPECT_EQ(peft::apply_lora(model, config, "recipe.yaml lora"), 6);  // q, k and v of 2 layers
}

}  // namespace
}  // namespace forma
