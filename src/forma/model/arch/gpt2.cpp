// GPT-2: learned absolute positions, LayerNorm with bias, GELU (tanh) MLP without a gate, every
// linear biased, HF's Conv1D layout ([in, out]) and one fused c_attn for q/k/v, and its own field
// names (n_embd, n_layer, n_head, n_positions, n_inner, activation_function, layer_norm_epsilon).
#include <limits>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gpt2 {

// Checkpoints saved from GPT2Model (the official ones) lack the "transformer." prefix and carry
// the causal-mask buffers attn.bias / attn.masked_bias, which are not weights.
std::string normalize(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".attn.bias") || ends_with(".attn.masked_bias")) return "";
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

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  c.vocab_size = r.integer("vocab_size", 50257);
  c.hidden_size = r.integer("n_embd", 768);
  c.num_hidden_layers = r.integer("n_layer", 12);
  c.num_attention_heads = r.integer("n_head", 12);
  c.max_position_embeddings = r.integer("n_positions", 1024);
  check(c.hidden_size <= std::numeric_limits<int64_t>::max() / 4, "{}: field 'n_embd' ({}) is too large", c.source,
        c.hidden_size);
  c.intermediate_size = r.integer("n_inner", 4 * c.hidden_size);
  c.hidden_act = r.string("activation_function", "gelu_new");
  c.norm_eps = r.number("layer_norm_epsilon", 1e-5);
  c.num_key_value_heads = c.num_attention_heads;
  check(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
        "{}: field 'n_head' ({}) must divide n_embd ({})", c.source, c.num_attention_heads, c.hidden_size);
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.attention_bias = c.mlp_bias = true;  // Conv1D layers always carry a bias
  // Variants forma does not implement must not load silently as something else.
  for (const char* key : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"}) {
    check(!r.boolean(key, false), "{}: field '{}': true is not supported", c.source, key);
  }
  check(r.boolean("scale_attn_weights", true), "{}: field 'scale_attn_weights': false is not supported",
        c.source);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  read_special_tokens(r, original, 50256, 50256, c);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  j["vocab_size"] = c.vocab_size;
  j["n_embd"] = c.hidden_size;
  j["n_layer"] = c.num_hidden_layers;
  j["n_head"] = c.num_attention_heads;
  j["n_positions"] = c.max_position_embeddings;
  j["n_inner"] = c.intermediate_size;
  j["activation_function"] = c.hidden_act;
  j["layer_norm_epsilon"] = c.norm_eps;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  write_special_tokens(c, j);
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
