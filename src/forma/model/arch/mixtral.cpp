// Mixtral: Mistral's attention with a sparse mixture of SiLU-gated experts (block_sparse_moe):
// softmax router, top-k, renormalised weights.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::mixtral {

constexpr StandardDefaults kDefaults{32000, 4096, 14336, 32, 32, 8, "silu", 4096 * 32, 1e-5, 1e6, 0, 1, 2, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.sliding_window = r.optional_integer("sliding_window", std::nullopt);
  c.num_local_experts = r.integer("num_local_experts", 8);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", 2);
  c.router_aux_loss_coef = r.number("router_aux_loss_coef", 0.001);
  check(c.num_local_experts > 0, "{}: field 'num_local_experts' must be positive, got {}", c.source,
        c.num_local_experts);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  write_sliding_window(c, j);
  j["num_local_experts"] = c.num_local_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["router_aux_loss_coef"] = c.router_aux_loss_coef;
}

}  // namespace forma::arch::mixtral

namespace forma {

extern const Architecture kMixtral{.model_type = "mixtral",
                                   .hf_class = "MixtralForCausalLM",
                                   .read_config = arch::mixtral::read,
                                   .write_config = arch::mixtral::write,
                                   .qkv_bias = never,
                                   .o_bias = never,
                                   .mlp_bias = never};

}  // namespace forma
