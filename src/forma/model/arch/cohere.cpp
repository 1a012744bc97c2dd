// Cohere (Command R): Llama's names and gated SiLU MLP, with one LayerNorm without bias feeding
// attention and MLP in parallel (x + attn(ln(x)) + mlp(ln(x))), RoPE on adjacent dim pairs
// (HF's cohere rotate_half), logits times logit_scale, tied embeddings.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::cohere {

// CohereConfig's defaults (Command R, 35B).
constexpr StandardDefaults kDefaults{256000, 8192, 22528, 40,   64, 0,    "silu", 8192, 1e-5, 1e4,
                                     0,      5,    255001, true, "layer_norm_eps"};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.logit_scale = r.number("logit_scale", 0.0625);
  check(std::isfinite(c.logit_scale) && c.logit_scale > 0, "{}: field 'logit_scale' ({}) must be a positive number",
        c.source, c.logit_scale);
  // Command R+'s per-head q/k LayerNorms are not implemented.
  check(!r.boolean("use_qk_norm", false), "{}: field 'use_qk_norm': true is not supported for model_type 'cohere'",
        c.source);
  c.norm_bias = false;
  c.parallel_block = true;
  c.rope_interleaved = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
  j["logit_scale"] = c.logit_scale;
  j["use_qk_norm"] = false;
}

}  // namespace forma::arch::cohere

namespace forma {

extern const Architecture kCohere{.model_type = "cohere",
                                  .hf_class = "CohereForCausalLM",
                                  .norm = NormKind::LayerNorm,
                                  .read_config = arch::cohere::read,
                                  .write_config = arch::cohere::write,
                                  .qkv_bias = if_attention_bias,
                                  .o_bias = if_attention_bias,
                                  .mlp_bias = never};

}  // namespace forma
