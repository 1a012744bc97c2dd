// BLOOM (BloomForCausalLM): ALiBi instead of position embeddings or RoPE, a LayerNorm on the word
// embeddings (word_embeddings_layernorm), a sequential pre-norm block, one fused
// self_attention.query_key_value holding per head [q_h | k_h | v_h], a tanh-gelu MLP of 4 x hidden,
// LayerNorms with bias and biases on every linear, tied embeddings. Field names n_layer / n_head
// (HF's attribute_map also reads num_hidden_layers / num_attention_heads), n_embed for hidden_size.
// ALiBi (attention.h alibi_bias) adds slope_h * (j - i) where HF adds slope_h * j cast to the model's
// dtype: equal under softmax, and in fp32 equal to rounding; in bf16 HF's rounding of slope_h * j
// grows with the position j, forma's bias does not (close to HF's, not bit-equal).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::bloom {

int64_t heads(const ModelConfig& c) { return c.num_attention_heads; }

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string h = "transformer.h.{L}.", m = "model.layers.{L}.";
  auto qkv = [&](const std::string& leaf) {
    return std::vector<std::string>{m + "self_attn.q_proj." + leaf, m + "self_attn.k_proj." + leaf,
                                    m + "self_attn.v_proj." + leaf};
  };
  return {
      {"transformer.word_embeddings.weight", {"model.embed_tokens.weight"}},
      {"transformer.word_embeddings_layernorm.weight", {"model.embed_layernorm.weight"}},
      {"transformer.word_embeddings_layernorm.bias", {"model.embed_layernorm.bias"}},
      {"transformer.ln_f.weight", {"model.norm.weight"}},
      {"transformer.ln_f.bias", {"model.norm.bias"}},
      {h + "input_layernorm.weight", {m + "input_layernorm.weight"}},
      {h + "input_layernorm.bias", {m + "input_layernorm.bias"}},
      {h + "post_attention_layernorm.weight", {m + "post_attention_layernorm.weight"}},
      {h + "post_attention_layernorm.bias", {m + "post_attention_layernorm.bias"}},
      {h + "self_attention.query_key_value.weight", qkv("weight"), false, 0, nullptr, heads},
      {h + "self_attention.query_key_value.bias", qkv("bias"), false, 0, nullptr, heads},
      {h + "self_attention.dense.weight", {m + "self_attn.o_proj.weight"}},
      {h + "self_attention.dense.bias", {m + "self_attn.o_proj.bias"}},
      {h + "mlp.dense_h_to_4h.weight", {m + "mlp.up_proj.weight"}},
      {h + "mlp.dense_h_to_4h.bias", {m + "mlp.up_proj.bias"}},
      {h + "mlp.dense_4h_to_h.weight", {m + "mlp.down_proj.weight"}},
      {h + "mlp.dense_4h_to_h.bias", {m + "mlp.down_proj.bias"}},
  };
}

// Checkpoints saved from BloomModel (the bigscience ones) lack the "transformer." prefix.
std::string normalize(const std::string& name) {
  const bool bare = name.rfind("transformer.", 0) != 0 && name.rfind("lm_head.", 0) != 0;
  return bare ? "transformer." + name : name;
}

// The attribute_map's name, else the field's own.
int64_t count(FieldReader& r, const char* field, const char* alias, int64_t fallback) {
  if (r.has(alias)) {
    r.take(field);  // HF: the alias, set after, wins
    return r.integer(alias, fallback);
  }
  return r.integer(field, fallback);
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  // BloomConfig's defaults.
  c.vocab_size = r.integer("vocab_size", 250880);
  if (r.has("n_embed")) r.take("hidden_size");  // HF's n_embed overrides hidden_size
  c.hidden_size = r.integer(r.has("n_embed") ? "n_embed" : "hidden_size", 64);
  c.num_hidden_layers = count(r, "n_layer", "num_hidden_layers", 2);
  c.num_attention_heads = count(r, "n_head", "num_attention_heads", 8);
  check(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
        "{}: field 'n_head' ({}) must divide hidden_size ({})", c.source, c.num_attention_heads, c.hidden_size);
  c.num_key_value_heads = c.num_attention_heads;
  c.head_dim = c.hidden_size / c.num_attention_heads;
  check(c.hidden_size <= std::numeric_limits<int64_t>::max() / 4, "{}: field 'hidden_size' ({}) is too large",
        c.source, c.hidden_size);
  c.intermediate_size = 4 * c.hidden_size;  // BloomMLP's, whatever n_inner says
  c.hidden_act = "gelu_pytorch_tanh";     // bloom_gelu_forward: the tanh approximation
  c.norm_eps = r.number("layer_norm_epsilon", 1e-5);
  check(!r.boolean("apply_residual_connection_post_layernorm", false),
        "{}: field 'apply_residual_connection_post_layernorm': true is not supported", c.source);
  // ALiBi has no position limit; forma's context (serve, training) is max_position_embeddings when
  // the config has one (read, not taken: it stays as it was), else BLOOM's training length 2048.
  FieldReader peek(original, r.source());
  c.max_position_embeddings = peek.integer("max_position_embeddings", 2048);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  read_special_tokens(r, original, 1, 2, c);
  c.alibi = true;
  c.embedding_norm = true;
  c.attention_bias = c.mlp_bias = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  j["vocab_size"] = c.vocab_size;
  j[j.contains("n_embed") ? "n_embed" : "hidden_size"] = c.hidden_size;
  j["n_layer"] = c.num_hidden_layers;
  j["n_head"] = c.num_attention_heads;
  j["layer_norm_epsilon"] = c.norm_eps;
  j["apply_residual_connection_post_layernorm"] = false;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  write_special_tokens(c, j);
}

}  // namespace forma::arch::bloom

namespace forma {

extern const Architecture kBloom{.model_type = "bloom",
                                 .hf_class = "BloomForCausalLM",
                                 .norm = NormKind::LayerNorm,
                                 .gated_mlp = false,
                                 .read_config = arch::bloom::read,
                                 .write_config = arch::bloom::write,
                                 .weight_rules = arch::bloom::rules,
                                 .normalize_hf_name = arch::bloom::normalize,
                                 .qkv_bias = always,
                                 .o_bias = always,
                                 .mlp_bias = always};

}  // namespace forma
