// Falcon (FalconForCausalLM), both layouts of one fused self_attention.query_key_value:
//   7B (multi_query): one kv head; [q heads | k | v]; attention and MLP in parallel from one
//     input_layernorm (parallel_attn), or sequential with a post_attention_layernorm.
//   40B (new_decoder_architecture): num_kv_heads groups, each [its q heads | k | v]; parallel
//     attention and MLP from ln_attn and ln_mlp (num_ln_in_parallel_attn 2, the default) or from
//     one input_layernorm (num_ln_in_parallel_attn 1).
//   Neither (multi_query false): per head [q_h | k_h | v_h], num_kv_heads = num_attention_heads.
// Rotary on whole heads, LayerNorms with bias, gelu MLP dense_h_to_4h / dense_4h_to_h, biases only
// with `bias`, tied embeddings. Old (RefinedWeb) configs spell n_embed, n_head, n_layer, n_head_kv:
// read either spelling, written back in the one the config used.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::falcon {

// The rotary frequencies some checkpoints carry are buffers, not weights.
std::string normalize(const std::string& name) {
  const std::string suffix = ".inv_freq";
  const bool buffer = name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return buffer ? "" : name;
}

int64_t kv_groups(const ModelConfig& c) { return c.num_key_value_heads; }

// Summed over the groups: every q head, then every group's k and v.
std::vector<int64_t> qkv_sizes(const ModelConfig& c) {
  const int64_t kv = c.num_key_value_heads * c.head_dim;
  return {c.num_attention_heads * c.head_dim, kv, kv};
}

std::vector<WeightRule> rules(const ModelConfig& c) {
  const std::string h = "transformer.h.{L}.", m = "model.layers.{L}.";
  auto qkv = [&](const std::string& leaf) {
    return std::vector<std::string>{m + "self_attn.q_proj." + leaf, m + "self_attn.k_proj." + leaf,
                                    m + "self_attn.v_proj." + leaf};
  };
  // 40B with two norms names them ln_attn and ln_mlp; every other layout input_layernorm (and,
  // sequential, post_attention_layernorm).
  const bool two = c.parallel_block && c.parallel_mlp_norm;
  const std::string ln1 = two ? "ln_attn" : "input_layernorm", ln2 = two ? "ln_mlp" : "post_attention_layernorm";
  std::vector<WeightRule> out = {
      {"transformer.word_embeddings.weight", {"model.embed_tokens.weight"}},
      {"transformer.ln_f.weight", {"model.norm.weight"}},
      {"transformer.ln_f.bias", {"model.norm.bias"}},
      {h + ln1 + ".weight", {m + "input_layernorm.weight"}},
      {h + ln1 + ".bias", {m + "input_layernorm.bias"}},
      {h + ln2 + ".weight", {m + "post_attention_layernorm.weight"}},
      {h + ln2 + ".bias", {m + "post_attention_layernorm.bias"}},
      {h + "self_attention.query_key_value.weight", qkv("weight"), false, 0, qkv_sizes, kv_groups},
      {h + "self_attention.query_key_value.bias", qkv("bias"), false, 0, qkv_sizes, kv_groups},
      {h + "self_attention.dense.weight", {m + "self_attn.o_proj.weight"}},
      {h + "self_attention.dense.bias", {m + "self_attn.o_proj.bias"}},
      {h + "mlp.dense_h_to_4h.weight", {m + "mlp.up_proj.weight"}},
      {h + "mlp.dense_h_to_4h.bias", {m + "mlp.up_proj.bias"}},
      {h + "mlp.dense_4h_to_h.weight", {m + "mlp.down_proj.weight"}},
      {h + "mlp.dense_4h_to_h.bias", {m + "mlp.down_proj.bias"}},
  };
  return out;
}

// A size under its transformers 5 name, else its old RefinedWeb name. The old key is read, not
// taken: it stays in `extra`, which tells write() to use that spelling again.
int64_t sized(FieldReader& r, FieldReader& peek, const char* name, const char* old_name, int64_t fallback) {
  if (r.has(name) || !r.has(old_name)) {
    r.take(old_name);  // both spellings: HF reads the new one only
    return r.integer(name, fallback);
  }
  return peek.integer(old_name, fallback);
}

void write_sized(nlohmann::json& j, const char* name, const char* old_name, int64_t value) {
  j[j.contains(old_name) ? old_name : name] = value;
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  // The layout switches are read, not taken: they stay in `extra` for the round trip, since the
  // generic fields they set do not tell them apart (multi_query, or new_decoder_architecture with
  // one kv group). `peek` reads them with the same type checks.
  FieldReader peek(original, r.source());
  // FalconConfig's defaults (Falcon-7B).
  c.vocab_size = r.integer("vocab_size", 65024);
  // HF's n_embed overrides hidden_size when both are given.
  if (r.has("n_embed")) r.take("hidden_size");
  c.hidden_size = sized(r, peek, "hidden_size", "n_embed", 4544);
  c.num_hidden_layers = sized(r, peek, "num_hidden_layers", "n_layer", 32);
  c.num_attention_heads = sized(r, peek, "num_attention_heads", "n_head", 71);
  check(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
        "{}: field 'num_attention_heads' ({}) must divide hidden_size ({})", c.source, c.num_attention_heads,
        c.hidden_size);
  c.head_dim = c.hidden_size / c.num_attention_heads;  // a property in HF, never a field
  const int64_t num_kv_heads = peek.integer(peek.has("num_kv_heads") ? "num_kv_heads" : "n_head_kv",
                                            c.num_attention_heads);
  const bool new_decoder = peek.boolean("new_decoder_architecture", false);
  const bool multi_query = peek.boolean("multi_query", true);
  const bool parallel_attn = peek.boolean("parallel_attn", true);
  const int64_t norms = peek.optional_integer("num_ln_in_parallel_attn", std::nullopt).value_or(new_decoder ? 2 : 1);
  check(!peek.boolean("alibi", false),
        "{}: field 'alibi': true is not supported for model_type 'falcon' (falcon-rw's ALiBi, which HF scales by "
        "1/sqrt(head_dim) and rounds to bfloat16)", c.source);
  // HF derives num_key_value_heads (config.json carries it, a copy): one kv head with multi_query.
  c.num_key_value_heads = new_decoder || !multi_query ? num_kv_heads : 1;
  // (With multi_query alone HF ignores num_kv_heads.)
  check((!new_decoder && multi_query) || (num_kv_heads > 0 && c.num_attention_heads % num_kv_heads == 0),
        "{}: field 'num_kv_heads' ({}) must divide num_attention_heads ({})", c.source, num_kv_heads,
        c.num_attention_heads);
  check(new_decoder || multi_query || num_kv_heads == c.num_attention_heads,
        "{}: field 'num_kv_heads' ({}): without multi_query or new_decoder_architecture, query_key_value holds q, k "
        "and v of every head, so num_kv_heads must be num_attention_heads ({})", c.source, num_kv_heads,
        c.num_attention_heads);
  // HF builds these layouts' norms but its forward reads others (an AttributeError): none is a model.
  check(!new_decoder || parallel_attn,
        "{}: field 'parallel_attn': false with new_decoder_architecture is not supported (the new decoder is "
        "always parallel)", c.source);
  check(norms == 1 || (norms == 2 && (new_decoder || !parallel_attn)),
        "{}: field 'num_ln_in_parallel_attn' ({}) must be 1, or 2 with new_decoder_architecture", c.source, norms);
  c.parallel_block = parallel_attn;
  c.parallel_mlp_norm = parallel_attn && norms == 2;
  const int64_t ffn_default = c.hidden_size <= std::numeric_limits<int64_t>::max() / 4 ? 4 * c.hidden_size : 0;
  c.intermediate_size = r.integer("ffn_hidden_size", ffn_default);
  c.hidden_act = r.string("activation", "gelu");
  c.max_position_embeddings = r.integer("max_position_embeddings", 2048);
  c.norm_eps = r.number("layer_norm_epsilon", 1e-5);
  c.rope_theta = r.number("rope_theta", 10000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const nlohmann::json rope = r.take(key);
    if (!rope.is_null()) read_rope_object(rope, key, /*partial_rotary=*/false, c);
  }
  c.attention_bias = c.mlp_bias = r.boolean("bias", false);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  read_special_tokens(r, original, 11, 11, c);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  j["vocab_size"] = c.vocab_size;
  write_sized(j, "hidden_size", "n_embed", c.hidden_size);
  write_sized(j, "num_hidden_layers", "n_layer", c.num_hidden_layers);
  write_sized(j, "num_attention_heads", "n_head", c.num_attention_heads);
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["ffn_hidden_size"] = c.intermediate_size;
  j["activation"] = c.hidden_act;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["layer_norm_epsilon"] = c.norm_eps;
  j["rope_theta"] = c.rope_theta;
  write_rope_scaling(c, j);
  j["bias"] = c.attention_bias;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  write_special_tokens(c, j);
}

}  // namespace forma::arch::falcon

namespace forma {

extern const Architecture kFalcon{.model_type = "falcon",
                                  .hf_class = "FalconForCausalLM",
                                  .norm = NormKind::LayerNorm,
                                  .gated_mlp = false,
                                  .read_config = arch::falcon::read,
                                  .write_config = arch::falcon::write,
                                  .weight_rules = arch::falcon::rules,
                                  .normalize_hf_name = arch::falcon::normalize,
                                  .qkv_bias = if_attention_bias,
                                  .o_bias = if_attention_bias,
                                  .mlp_bias = if_attention_bias};

}  // namespace forma
