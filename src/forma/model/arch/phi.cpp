// Phi (phi-1, phi-1.5, phi-2): one LayerNorm (with bias) feeding attention and MLP in parallel,
// x + attn(ln(x)) + mlp(ln(x)); partial rotary; biases on q/k/v, the output projection (HF
// `dense`), the fc1/fc2 MLP (gelu_new, no gate) and lm_head; HF's final_layernorm.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::phi {

// PhiConfig's defaults (phi-1.5 sizes); partial_rotary_factor 0.5 is its default too.
constexpr StandardDefaults kDefaults{51200, 2048, 8192, 24,    32, 0,    "gelu_new", 2048, 1e-5, 1e4,
                                     0,     1,    2,    false, "layer_norm_eps", true};

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string m = "model.layers.{L}.";
  return {
      {"model.final_layernorm.weight", {"model.norm.weight"}},
      {"model.final_layernorm.bias", {"model.norm.bias"}},
      {m + "self_attn.dense.weight", {m + "self_attn.o_proj.weight"}},
      {m + "self_attn.dense.bias", {m + "self_attn.o_proj.bias"}},
      {m + "mlp.fc1.weight", {m + "mlp.up_proj.weight"}},
      {m + "mlp.fc1.bias", {m + "mlp.up_proj.bias"}},
      {m + "mlp.fc2.weight", {m + "mlp.down_proj.weight"}},
      {m + "mlp.fc2.bias", {m + "mlp.down_proj.bias"}},
  };
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  c.partial_rotary_factor = 0.5;  // PhiConfig's default when the config does not say
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  // Per-head LayerNorms on q and k (not in the published phi checkpoints) are not implemented.
  check(!r.boolean("qk_layernorm", false), "{}: field 'qk_layernorm': true is not supported for model_type 'phi'",
        c.source);
  check(!c.tie_word_embeddings, "{}: field 'tie_word_embeddings': true is not supported for model_type 'phi' (its "
        "lm_head has a bias of its own)", c.source);
  c.attention_bias = c.mlp_bias = true;
  c.parallel_block = true;
  c.lm_head_bias = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["partial_rotary_factor"] = c.partial_rotary_factor;  // also when 1: the default is 0.5
  j["qk_layernorm"] = false;
}

}  // namespace forma::arch::phi

namespace forma {

extern const Architecture kPhi{.model_type = "phi",
                               .hf_class = "PhiForCausalLM",
                               .norm = NormKind::LayerNorm,
                               .gated_mlp = false,
                               .read_config = arch::phi::read,
                               .write_config = arch::phi::write,
                               .weight_rules = arch::phi::rules,
                               .qkv_bias = always,
                               .o_bias = always,
                               .mlp_bias = always};

}  // namespace forma
