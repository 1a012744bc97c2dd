// OLMoE (OLMoE-1B-7B): Llama's pre-norm layer with OLMo 2's RMSNorms over the whole q and k
// projections (every head at once, before the split into heads and RoPE), and a sparse block in
// every layer: softmax router, top-k, the chosen probabilities used as they are unless
// norm_topk_prob (moe_renormalize). clip_qkv clamps q, k, v after those norms (HF's order).
// HF names the block mlp (mlp.gate, mlp.experts.{E}.gate_proj / up_proj / down_proj): the same
// layout as Qwen3-MoE, whose rules this spec reuses.
#include <cmath>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// qwen3_moe.cpp's map of HF's per-expert names onto forma's block_sparse_moe.
namespace forma::arch::qwen3_moe {
std::vector<WeightRule> rules(const ModelConfig& c);
}  // namespace forma::arch::qwen3_moe

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::olmoe {

// OlmoeConfig's defaults (configuration_olmoe.py): bos null, eos 50279, kv heads = heads.
constexpr StandardDefaults kDefaults{50304, 2048, 2048, 16, 16, 0, "silu", 4096, 1e-5, 1e4, 0, -1, 50279, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  const nlohmann::json clip = r.take("clip_qkv");
  if (!clip.is_null()) {
    check(clip.is_number() && std::isfinite(clip.get<double>()) && clip.get<double>() > 0,
          "{}: field 'clip_qkv' ({}) must be a positive number or null", c.source, clip.dump());
    c.clip_qkv = clip.get<double>();
  }
  // OlmoeConfig maps num_local_experts onto num_experts (attribute_map): either spelling reads.
  const int64_t experts = r.integer("num_experts", 64);
  c.num_local_experts = r.integer("num_local_experts", experts);
  check(c.num_local_experts > 0, "{}: field 'num_experts' must be positive, got {}", c.source, c.num_local_experts);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", 8);
  c.router_aux_loss_coef = r.number("router_aux_loss_coef", 0.01);
  c.moe_renormalize = r.boolean("norm_topk_prob", false);
  c.qk_norm_whole = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
  j["clip_qkv"] = c.clip_qkv > 0 ? nlohmann::json(c.clip_qkv) : nlohmann::json(nullptr);
  j.erase("num_local_experts");
  j["num_experts"] = c.num_local_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["router_aux_loss_coef"] = c.router_aux_loss_coef;
  j["norm_topk_prob"] = c.moe_renormalize;
}

}  // namespace forma::arch::olmoe

namespace forma {

extern const Architecture kOlmoe{.model_type = "olmoe",
                                 .hf_class = "OlmoeForCausalLM",
                                 .read_config = arch::olmoe::read,
                                 .write_config = arch::olmoe::write,
                                 .weight_rules = arch::qwen3_moe::rules,
                                 .qkv_bias = if_attention_bias,
                                 .o_bias = if_attention_bias,
                                 .mlp_bias = never};

}  // namespace forma
