// OLMo (1, e.g. OLMo-1B-hf / OLMo-7B-hf): Llama's layer and names with LayerNorms that have no
// parameters at all (HF OlmoLayerNorm: epsilon fixed at 1e-5, no config field), and clip_qkv: the
// q, k and v projections clamped to [-clip_qkv, clip_qkv] before RoPE.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::olmo {

// OlmoConfig's defaults (configuration_olmo.py): bos null, eos 50279. OLMo configs have no norm
// epsilon; the key named here is only read if a config carries one, and never written.
constexpr StandardDefaults kDefaults{50304, 4096, 11008, 32, 32, 0, "silu", 2048, 1e-5, 1e4, 0, -1, 50279, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  c.norm_eps = 1e-5;  // OlmoLayerNorm's constant, whatever the config says
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  read_clip_qkv(r, c);
  c.norm_without_parameters = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j.erase(kDefaults.norm_eps_key);
  j["attention_bias"] = c.attention_bias;
  write_clip_qkv(c, j);
}

}  // namespace forma::arch::olmo

namespace forma {

extern const Architecture kOlmo{.model_type = "olmo",
                                .hf_class = "OlmoForCausalLM",
                                .norm = NormKind::LayerNorm,
                                .read_config = arch::olmo::read,
                                .write_config = arch::olmo::write,
                                .qkv_bias = if_attention_bias,
                                .o_bias = if_attention_bias,
                                .mlp_bias = never};

}  // namespace forma
