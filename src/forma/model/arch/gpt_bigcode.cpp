// GPT-BigCode (SantaCoder, StarCoder 1): GPT-2's block and field names with multi-query attention:
// one nn.Linear c_attn (not Conv1D) whose output rows are [q (n_embd) | k (head_dim) | v (head_dim)].
// Without multi_query, c_attn interleaves q/k/v per head, a layout forma refuses by name.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

namespace forma::arch::gpt_bigcode {

constexpr Gpt2StyleDefaults kDefaults{50257, 768, 12, 12, 1024, "gelu_pytorch_tanh", 1e-5, 50256, 50256};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_gpt2_style_fields(r, original, kDefaults, c);
  check(r.boolean("multi_query", true), "{}: field 'multi_query': false (q/k/v interleaved per head in c_attn) is "
        "not supported for model_type 'gpt_bigcode'", c.source);
  c.num_key_value_heads = 1;
  r.take("num_key_value_heads");  // transformers 5 writes the 1 that multi_query implies
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_gpt2_style_fields(c, j);
  j["multi_query"] = true;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
}

std::vector<int64_t> qkv_rows(const ModelConfig& c) { return {c.hidden_size, c.head_dim, c.head_dim}; }

std::string normalize(const std::string& name) {
  // Checkpoints saved from GPTBigCodeModel lack the "transformer." prefix.
  const bool bare = name.rfind("transformer.", 0) != 0 && name.rfind("lm_head.", 0) != 0;
  return bare ? "transformer." + name : name;
}

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string h = "transformer.h.{L}.", m = "model.layers.{L}.";
  std::vector<WeightRule> out = {
      {"transformer.wte.weight", {"model.embed_tokens.weight"}},
      {"transformer.wpe.weight", {"model.embed_positions.weight"}},
      {"transformer.ln_f.weight", {"model.norm.weight"}},
      {"transformer.ln_f.bias", {"model.norm.bias"}},
  };
  for (const char* kind : {"weight", "bias"}) {
    const std::string k = std::string(".") + kind;
    out.push_back({h + "ln_1" + k, {m + "input_layernorm" + k}});
    out.push_back({h + "ln_2" + k, {m + "post_attention_layernorm" + k}});
    out.push_back({h + "attn.c_attn" + k,
                   {m + "self_attn.q_proj" + k, m + "self_attn.k_proj" + k, m + "self_attn.v_proj" + k},
                   false, 0, qkv_rows});
    out.push_back({h + "attn.c_proj" + k, {m + "self_attn.o_proj" + k}});
    out.push_back({h + "mlp.c_fc" + k, {m + "mlp.up_proj" + k}});
    out.push_back({h + "mlp.c_proj" + k, {m + "mlp.down_proj" + k}});
  }
  return out;
}

}  // namespace forma::arch::gpt_bigcode

namespace forma {

extern const Architecture kGptBigcode{.model_type = "gpt_bigcode",
                                      .hf_class = "GPTBigCodeForCausalLM",
                                      .norm = NormKind::LayerNorm,
                                      .position = PositionKind::Learned,
                                      .gated_mlp = false,
                                      .read_config = arch::gpt_bigcode::read,
                                      .write_config = arch::gpt_bigcode::write,
                                      .weight_rules = arch::gpt_bigcode::rules,
                                      .normalize_hf_name = arch::gpt_bigcode::normalize,
                                      .qkv_bias = always,
                                      .o_bias = always,
                                      .mlp_bias = always};

}  // namespace forma
