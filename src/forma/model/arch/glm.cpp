// GLM (glm-4-9b as transformers' "glm") and GLM-4 ("glm4", GLM-4-0414): Llama's layer with q/k/v
// biases (attention_bias; the output projection has none), one fused gate_up_proj ([gate | up]
// rows), RoPE on the first half of each head (partial_rotary_factor 0.5) with adjacent dims paired.
// GLM-4 adds sandwich norms: post_self_attn_layernorm after attention and post_mlp_layernorm after
// the MLP, its post_attention_layernorm being the MLP's input norm (forma's gemma2 names).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::glm {

// GlmConfig's and Glm4Config's defaults (glm-4-9b); eos is a list when absent (below).
constexpr StandardDefaults kDefaults{151552, 4096, 13696, 40,    32, 2,  "silu", 131072, 1.5625e-7, 1e4,
                                     0,      -1,   -1,    false, "rms_norm_eps", true};

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string m = "model.layers.{L}.";
  return {{m + "mlp.gate_up_proj.weight", {m + "mlp.gate_proj.weight", m + "mlp.up_proj.weight"}, false, 0}};
}

std::vector<WeightRule> glm4_rules(const ModelConfig& c) {
  const std::string m = "model.layers.{L}.";
  std::vector<WeightRule> out = rules(c);
  out.push_back({m + "post_self_attn_layernorm.weight", {m + "post_attention_layernorm.weight"}});
  out.push_back({m + "post_attention_layernorm.weight", {m + "pre_feedforward_layernorm.weight"}});
  out.push_back({m + "post_mlp_layernorm.weight", {m + "post_feedforward_layernorm.weight"}});
  return out;
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  c.partial_rotary_factor = 0.5;  // GlmConfig's default when the config does not say
  read_standard_fields(r, kDefaults, c);
  if (!original.contains("head_dim")) c.head_dim = 128;  // GlmConfig's default, not hidden / heads
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  if (!original.contains("eos_token_id")) c.eos_token_id = {151329, 151336, 151338};
  c.attention_bias = r.boolean("attention_bias", true);
  c.rope_interleaved = true;
}

void read_glm4(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read(r, original, c);
  c.post_block_norms = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["partial_rotary_factor"] = c.partial_rotary_factor;  // also when 1: the default is 0.5
  j["attention_bias"] = c.attention_bias;
}

}  // namespace forma::arch::glm

namespace forma {

extern const Architecture kGlm{.model_type = "glm",
                               .hf_class = "GlmForCausalLM",
                               .read_config = arch::glm::read,
                               .write_config = arch::glm::write,
                               .weight_rules = arch::glm::rules,
                               .qkv_bias = if_attention_bias,
                               .o_bias = never,
                               .mlp_bias = never};

extern const Architecture kGlm4{.model_type = "glm4",
                                .hf_class = "Glm4ForCausalLM",
                                .read_config = arch::glm::read_glm4,
                                .write_config = arch::glm::write,
                                .weight_rules = arch::glm::glm4_rules,
                                .qkv_bias = if_attention_bias,
                                .o_bias = never,
                                .mlp_bias = never};

}  // namespace forma
