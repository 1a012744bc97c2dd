// Llama (1, 2, 3, 3.1): RMSNorm, RoPE (linear or llama3 scaling), SiLU-gated MLP, grouped-query
// attention; attention_bias puts a bias on q/k/v/o, mlp_bias on the MLP.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::llama {

constexpr StandardDefaults kDefaults{32000, 4096, 11008, 32, 32, 0, "silu", 2048, 1e-6, 1e4, 0, 1, 2, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.mlp_bias = r.boolean("mlp_bias", false);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
  j["mlp_bias"] = c.mlp_bias;
}

}  // namespace forma::arch::llama

namespace forma {

extern const Architecture kLlama{.model_type = "llama",
                                 .hf_class = "LlamaForCausalLM",
                                 .read_config = arch::llama::read,
                                 .write_config = arch::llama::write,
                                 .qkv_bias = if_attention_bias,
                                 .o_bias = if_attention_bias,
                                 .mlp_bias = if_mlp_bias};

}  // namespace forma
