// GPT-2: learned absolute positions, LayerNorm with bias, GELU (tanh) MLP without a gate, every
// linear biased, HF's Conv1D layout ([in, out]) and one fused c_attn for q/k/v, and its own field
// names (n_embd, n_layer, n_head, n_positions, n_inner, activation_function, layer_norm_epsilon).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gpt2 {

// Checkpoints saved from GPT2Model (the official ones) lack the "transformer." prefix and carry
// the causal-mask buffers attn.bias / attn.masked_bias, which are not weights.
std::string normalize(const std::string& name) {
  if (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")) return "";
  const bool bare = name.rfind("transformer.", 0) != 0 && name.rfind("lm_head.", 0) != 0;
  return bare ? "transformer." + name : name;
}

// Conv1D weights are [in, out] (transposed); the fused c_attn holds [q | k | v] along its last dim.
std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string h = "transformer.h.{L}.", m = "model.layers.{L}.";
  return {
      {"transformer.wte.weight", {"model.embed_tokens.weight"}},
      {"transformer.wpe.weight", {"model.embed_positions.weight"}},
      {"transformer.ln_f.weight", {"model.norm.weight"}},
      {"transformer.ln_f.bias", {"model.norm.bias"}},
      {h + "ln_1.weight", {m + "input_layernorm.weight"}},
      {h + "ln_1.bias", {m + "input_layernorm.bias"}},
      {h + "ln_2.weight", {m + "post_attention_layernorm.weight"}},
      {h + "ln_2.bias", {m + "post_attention_layernorm.bias"}},
      {h + "attn.c_attn.weight",
       {m + "self_attn.q_proj.weight", m + "self_attn.k_proj.weight", m + "self_attn.v_proj.weight"},
       true},
      {h + "attn.c_attn.bias", {m + "self_attn.q_proj.bias", m + "self_attn.k_proj.bias", m + "self_attn.v_proj.bias"}},
      {h + "attn.c_proj.weight", {m + "self_attn.o_proj.weight"}, true},
      {h + "attn.c_proj.bias", {m + "self_attn.o_proj.bias"}},
      {h + "mlp.c_fc.weight", {m + "mlp.up_proj.weight"}, true},
      {h + "mlp.c_fc.bias", {m + "mlp.up_proj.bias"}},
      {h + "mlp.c_proj.weight", {m + "mlp.down_proj.weight"}, true},
      {h + "mlp.c_proj.bias", {m + "mlp.down_proj.bias"}},
  };
}

constexpr Gpt2StyleDefaults kDefaults{50257, 768, 12, 12, 1024, "gelu_new", 1e-5, 50256, 50256};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_gpt2_style_fields(r, original, kDefaults, c);
  // Variants forma does not implement must not load silently as something else.
  for (const char* key : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"}) {
    check(!r.boolean(key, false), "{}: field '{}': true is not supported", c.source, key);
  }
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_gpt2_style_fields(c, j);
  j["tie_word_embeddings"] = c.tie_word_embeddings;
}

}  // namespace forma::arch::gpt2

namespace forma {

extern const Architecture kGpt2{.model_type = "gpt2",
                                .hf_class = "GPT2LMHeadModel",
                                .norm = NormKind::LayerNorm,
                                .position = PositionKind::Learned,
                                .gated_mlp = false,
                                .scaled_residual_init = true,
                                .read_config = arch::gpt2::read,
                                .write_config = arch::gpt2::write,
                                .weight_rules = arch::gpt2::rules,
                                .normalize_hf_name = arch::gpt2::normalize,
                                .qkv_bias = always,
                                .o_bias = always,
                                .mlp_bias = always};

}  // namespace forma
