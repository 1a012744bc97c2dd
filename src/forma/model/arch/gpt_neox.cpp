// GPT-NeoX (Pythia, GPT-NeoX-20B): LayerNorms with bias; by default the parallel residual
// x + attn(ln1(x)) + mlp(ln2(x)) (use_parallel_residual), else the usual sequential block; partial
// rotary (rotary_pct, 0.25 by default); one fused query_key_value whose rows hold, per head,
// [q_h | k_h | v_h]; biases on the attention (attention_bias) and the gelu MLP; an untied embed_out.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gpt_neox {

// Older checkpoints carry buffers that are not weights: causal masks and the rotary frequencies.
std::string normalize(const std::string& name) {
  for (const char* buffer : {".attention.bias", ".attention.masked_bias", ".rotary_emb.inv_freq"}) {
    if (name.ends_with(buffer)) return "";
  }
  return name;
}

int64_t heads(const ModelConfig& c) { return c.num_attention_heads; }

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string g = "gpt_neox.layers.{L}.", m = "model.layers.{L}.";
  const std::vector<std::string> qkv = {m + "self_attn.q_proj.", m + "self_attn.k_proj.", m + "self_attn.v_proj."};
  auto parts = [&](const std::string& leaf) {
    std::vector<std::string> out;
    for (const auto& p : qkv) out.push_back(p + leaf);
    return out;
  };
  return {
      {"gpt_neox.embed_in.weight", {"model.embed_tokens.weight"}},
      {"gpt_neox.final_layer_norm.weight", {"model.norm.weight"}},
      {"gpt_neox.final_layer_norm.bias", {"model.norm.bias"}},
      {"embed_out.weight", {"lm_head.weight"}},
      {g + "input_layernorm.weight", {m + "input_layernorm.weight"}},
      {g + "input_layernorm.bias", {m + "input_layernorm.bias"}},
      {g + "post_attention_layernorm.weight", {m + "post_attention_layernorm.weight"}},
      {g + "post_attention_layernorm.bias", {m + "post_attention_layernorm.bias"}},
      {g + "attention.query_key_value.weight", parts("weight"), false, 0, nullptr, heads},
      {g + "attention.query_key_value.bias", parts("bias"), false, 0, nullptr, heads},
      {g + "attention.dense.weight", {m + "self_attn.o_proj.weight"}},
      {g + "attention.dense.bias", {m + "self_attn.o_proj.bias"}},
      {g + "mlp.dense_h_to_4h.weight", {m + "mlp.up_proj.weight"}},
      {g + "mlp.dense_h_to_4h.bias", {m + "mlp.up_proj.bias"}},
      {g + "mlp.dense_4h_to_h.weight", {m + "mlp.down_proj.weight"}},
      {g + "mlp.dense_4h_to_h.bias", {m + "mlp.down_proj.bias"}},
  };
}

// GPTNeoXConfig's defaults (GPT-NeoX-20B).
constexpr StandardDefaults kDefaults{50432, 6144, 24576, 44,    64, 0,    "gelu", 2048, 1e-5, 1e4,
                                     0,     0,    2,     false, "layer_norm_eps", true};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  // transformers 4 names: rotary_pct and rotary_emb_base; transformers 5 reads them into
  // partial_rotary_factor and rope_theta (top level or in rope_parameters), which win when present.
  c.partial_rotary_factor = r.number("rotary_pct", 0.25);
  StandardDefaults d = kDefaults;
  d.rope_theta = r.number("rotary_emb_base", d.rope_theta);
  read_standard_fields(r, d, c);
  read_special_tokens(r, original, d.bos, d.eos, c);
  check(c.num_key_value_heads == c.num_attention_heads && c.head_dim * c.num_attention_heads == c.hidden_size,
        "{}: gpt_neox has hidden_size / num_attention_heads dims per head and no grouped-query attention "
        "(num_key_value_heads {}, head_dim {})", c.source, c.num_key_value_heads, c.head_dim);
  c.attention_bias = r.boolean("attention_bias", true);
  c.mlp_bias = true;
  c.parallel_block = c.parallel_mlp_norm = r.boolean("use_parallel_residual", true);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j.erase("num_key_value_heads");
  j.erase("head_dim");
  j["partial_rotary_factor"] = c.partial_rotary_factor;  // also when 1: the default is 0.25
  j["rotary_pct"] = c.partial_rotary_factor;
  j["rotary_emb_base"] = c.rope_theta;
  j["attention_bias"] = c.attention_bias;
  j["use_parallel_residual"] = c.parallel_block;
}

}  // namespace forma::arch::gpt_neox

namespace forma {

extern const Architecture kGptNeox{.model_type = "gpt_neox",
                                   .hf_class = "GPTNeoXForCausalLM",
                                   .norm = NormKind::LayerNorm,
                                   .gated_mlp = false,
                                   .read_config = arch::gpt_neox::read,
                                   .write_config = arch::gpt_neox::write,
                                   .weight_rules = arch::gpt_neox::rules,
                                   .normalize_hf_name = arch::gpt_neox::normalize,
                                   .qkv_bias = if_attention_bias,
                                   .o_bias = if_attention_bias,
                                   .mlp_bias = always};

}  // namespace forma
