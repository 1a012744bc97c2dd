// StableLM (StableLM-2, StableLM-3B-4E1T): LayerNorm with bias, Llama's gated SiLU MLP and names,
// partial rotary (default 0.25), use_qkv_bias on q/k/v (never on o_proj), qk_layernorm (one
// bias-free LayerNorm per q and k head, StableLM-2-12B) and use_parallel_residual
// (x + attn(ln(x)) + mlp(ln(x)), one LayerNorm).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::stablelm {

constexpr StandardDefaults kDefaults{50304, 2560, 6912, 32,    32, 32,   "silu", 4096, 1e-5, 1e4,
                                     0,     0,    0,    false, "layer_norm_eps", true};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  c.partial_rotary_factor = 0.25;  // StableLmConfig's default when the config does not say
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("use_qkv_bias", false);
  c.head_layernorm = r.boolean("qk_layernorm", false);
  c.parallel_block = r.boolean("use_parallel_residual", false);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["partial_rotary_factor"] = c.partial_rotary_factor;  // also when 1: the default is 0.25
  j["use_qkv_bias"] = c.attention_bias;
  j["qk_layernorm"] = c.head_layernorm;
  j["use_parallel_residual"] = c.parallel_block;
}

}  // namespace forma::arch::stablelm

namespace forma {

extern const Architecture kStableLm{.model_type = "stablelm",
                                    .hf_class = "StableLmForCausalLM",
                                    .norm = NormKind::LayerNorm,
                                    .read_config = arch::stablelm::read,
                                    .write_config = arch::stablelm::write,
                                    .qkv_bias = if_attention_bias,
                                    .o_bias = never,
                                    .mlp_bias = never};

}  // namespace forma
