// Nemotron (Nemotron-3, Nemotron-4 / Minitron): LayerNorm1P everywhere (a LayerNorm with bias that
// scales by (1 + weight), ModelConfig::norm_weight_offset), a non-gated squared-ReLU MLP
// (down(relu(up(x))^2), HF up_proj/down_proj), partial rotary (default 0.5), Llama's names;
// attention_bias on q/k/v/o, mlp_bias on up/down.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::nemotron {

// NemotronConfig's defaults (configuration_nemotron.py): the epsilon is "norm_eps".
constexpr StandardDefaults kDefaults{256000, 6144, 24576, 32,    48,         0,    "relu2", 4096, 1e-5, 1e4,
                                     0,      2,    3,     false, "norm_eps", true};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  c.partial_rotary_factor = 0.5;  // NemotronConfig's default when the config does not say
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.mlp_bias = r.boolean("mlp_bias", false);
  c.norm_weight_offset = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["partial_rotary_factor"] = c.partial_rotary_factor;  // also when 1: the default is 0.5
  j["attention_bias"] = c.attention_bias;
  j["mlp_bias"] = c.mlp_bias;
}

}  // namespace forma::arch::nemotron

namespace forma {

extern const Architecture kNemotron{.model_type = "nemotron",
                                    .hf_class = "NemotronForCausalLM",
                                    .norm = NormKind::LayerNorm,
                                    .gated_mlp = false,
                                    .read_config = arch::nemotron::read,
                                    .write_config = arch::nemotron::write,
                                    .qkv_bias = if_attention_bias,
                                    .o_bias = if_attention_bias,
                                    .mlp_bias = if_mlp_bias};

}  // namespace forma
