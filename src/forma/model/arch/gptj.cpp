// GPT-J: GPT-2's field names, one LayerNorm (with bias) feeding attention and MLP in parallel,
// x + attn(ln(x)) + mlp(ln(x)); RoPE on the first rotary_dim dims of each head with adjacent dims
// paired (rotate_every_two); q/k/v/out projections without bias, the fc_in/fc_out MLP (gelu_new, no
// gate) and lm_head with bias.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gptj {

// Old checkpoints carry the causal-mask buffers attn.bias / attn.masked_bias, which are not weights.
std::string normalize(const std::string& name) {
  for (const char* buffer : {".attn.bias", ".attn.masked_bias"}) {
    if (name.ends_with(buffer)) return "";
  }
  return name;
}

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string h = "transformer.h.{L}.", m = "model.layers.{L}.";
  return {
      {"transformer.wte.weight", {"model.embed_tokens.weight"}},
      {"transformer.ln_f.weight", {"model.norm.weight"}},
      {"transformer.ln_f.bias", {"model.norm.bias"}},
      {h + "ln_1.weight", {m + "input_layernorm.weight"}},
      {h + "ln_1.bias", {m + "input_layernorm.bias"}},
      {h + "attn.q_proj.weight", {m + "self_attn.q_proj.weight"}},
      {h + "attn.k_proj.weight", {m + "self_attn.k_proj.weight"}},
      {h + "attn.v_proj.weight", {m + "self_attn.v_proj.weight"}},
      {h + "attn.out_proj.weight", {m + "self_attn.o_proj.weight"}},
      {h + "mlp.fc_in.weight", {m + "mlp.up_proj.weight"}},
      {h + "mlp.fc_in.bias", {m + "mlp.up_proj.bias"}},
      {h + "mlp.fc_out.weight", {m + "mlp.down_proj.weight"}},
      {h + "mlp.fc_out.bias", {m + "mlp.down_proj.bias"}},
  };
}

// GPTJConfig's defaults (GPT-J 6B).
constexpr Gpt2StyleDefaults kDefaults{50400, 4096, 28, 16, 2048, "gelu_new", 1e-5, 50256, 50256};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_gpt2_style_fields(r, original, kDefaults, c);
  // null: every dim of the head rotates.
  const int64_t rotary_dim = r.optional_integer("rotary_dim", 64).value_or(c.head_dim);
  check(rotary_dim > 0 && rotary_dim <= c.head_dim && rotary_dim % 2 == 0,
        "{}: field 'rotary_dim' ({}) must be even and in [2, head_dim = {}]", c.source, rotary_dim, c.head_dim);
  c.partial_rotary_factor = static_cast<double>(rotary_dim) / static_cast<double>(c.head_dim);
  check(c.rotary_dim() == rotary_dim, "{}: field 'rotary_dim' ({}) is not representable as a fraction of head_dim {}",
        c.source, rotary_dim, c.head_dim);
  c.rope_interleaved = true;
  c.parallel_block = true;
  c.lm_head_bias = true;
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  check(!c.tie_word_embeddings, "{}: field 'tie_word_embeddings': true is not supported for model_type 'gptj' (its "
        "lm_head has a bias of its own)", c.source);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_gpt2_style_fields(c, j);
  j["rotary_dim"] = c.rotary_dim();
  j["tie_word_embeddings"] = false;
}

}  // namespace forma::arch::gptj

namespace forma {

extern const Architecture kGptj{.model_type = "gptj",
                                .hf_class = "GPTJForCausalLM",
                                .norm = NormKind::LayerNorm,
                                .gated_mlp = false,
                                .read_config = arch::gptj::read,
                                .write_config = arch::gptj::write,
                                .weight_rules = arch::gptj::rules,
                                .normalize_hf_name = arch::gptj::normalize,
                                .qkv_bias = never,
                                .o_bias = never,
                                .mlp_bias = always};

}  // namespace forma
