// Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen2's attention (biased q/k/v, o without) with
// a sparse block in every layer: softmax router, top-k, the chosen probabilities as they are
// unless norm_topk_prob (moe_renormalize), plus a shared SwiGLU expert every token goes through,
// scaled by sigmoid(shared_expert_gate(x)) and added (shared_expert_intermediate_size).
// HF names the block mlp (mlp.gate, mlp.experts.{E}.*, mlp.shared_expert.*, mlp.shared_expert_gate);
// forma holds it as block_sparse_moe, the routed experts under Mixtral's names (qwen3_moe's rules).
// The experts' width is moe_intermediate_size; the dense intermediate_size, used only by dense
// layers (which forma refuses), is kept as it was for the round trip.
#include <string>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// qwen3_moe.cpp's map of HF's per-expert names onto forma's block_sparse_moe.
namespace forma::arch::qwen3_moe {
std::vector<WeightRule> rules(const ModelConfig& c);
}  // namespace forma::arch::qwen3_moe

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::qwen2_moe {

// Qwen2MoeConfig's defaults (configuration_qwen2_moe.py); intermediate_size here is the experts'
// (moe_intermediate_size 1408).
constexpr StandardDefaults kDefaults{151936, 2048, 1408, 24, 16, 16, "silu", 32768, 1e-6, 1e4, 4096, -1, -1, false};

std::vector<WeightRule> rules(const ModelConfig& c) {
  std::vector<WeightRule> out = qwen3_moe::rules(c);
  const std::string hf = "model.layers.{L}.mlp.", ours = "model.layers.{L}.block_sparse_moe.";
  for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
    out.push_back({hf + "shared_expert." + proj + ".weight", {ours + "shared_expert." + proj + ".weight"}});
  }
  out.push_back({hf + "shared_expert_gate.weight", {ours + "shared_expert_gate.weight"}});
  return out;
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  // The dense intermediate_size stays in extra (written back as it was): taken out before the
  // standard fields and put back below.
  const nlohmann::json dense = r.take("intermediate_size");
  // With use_sliding_window false HF ignores sliding_window (and writes 0 there, which forma's
  // window check would refuse): it stays in extra, untouched.
  const bool sliding = r.boolean("use_sliding_window", false);
  check(!sliding, "{}: field 'use_sliding_window': true is not supported for model_type 'qwen2_moe'", c.source);
  const nlohmann::json window = r.take("sliding_window");
  read_standard_fields(r, kDefaults, c);
  c.intermediate_size = r.integer("moe_intermediate_size", 1408);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("qkv_bias", true);  // transformers 4 had no field: always biased
  c.use_sliding_window = false;
  c.sliding_window = std::nullopt;
  // transformers 4 spells it num_experts, 5 may write num_local_experts (either reads the other).
  const int64_t experts = r.integer("num_experts", 60);
  c.num_local_experts = r.integer("num_local_experts", experts);
  check(c.num_local_experts > 0, "{}: field 'num_experts' must be positive, got {}", c.source, c.num_local_experts);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", 4);
  c.router_aux_loss_coef = r.number("router_aux_loss_coef", 0.001);
  c.moe_renormalize = r.boolean("norm_topk_prob", false);
  c.shared_expert_intermediate_size = r.integer("shared_expert_intermediate_size", 5632);
  check(c.shared_expert_intermediate_size > 0, "{}: field 'shared_expert_intermediate_size' must be positive, got {}",
        c.source, c.shared_expert_intermediate_size);
  // HF: layer i is sparse unless listed in mlp_only_layers or (i + 1) % decoder_sparse_step != 0.
  const int64_t step = r.integer("decoder_sparse_step", 1);
  check(step == 1, "{}: field 'decoder_sparse_step' ({}): only 1 (every layer sparse) is supported", c.source, step);
  const nlohmann::json dense_layers = r.take("mlp_only_layers");
  check(dense_layers.is_null() || (dense_layers.is_array() && dense_layers.empty()),
        "{}: field 'mlp_only_layers' ({}): dense layers are not supported for model_type 'qwen2_moe'", c.source,
        dense_layers.dump());
  nlohmann::json rest = r.rest();
  if (!dense.is_null()) rest["intermediate_size"] = dense;
  if (!window.is_null() || original.contains("sliding_window")) rest["sliding_window"] = window;
  r = FieldReader(rest, r.source());
}

void write(const ModelConfig& c, nlohmann::json& j) {
  const nlohmann::json dense = j.contains("intermediate_size") ? j["intermediate_size"] : nlohmann::json();
  write_standard_fields(c, kDefaults, j);
  if (dense.is_null()) {
    j.erase("intermediate_size");
  } else {
    j["intermediate_size"] = dense;
  }
  j["moe_intermediate_size"] = c.intermediate_size;
  j["qkv_bias"] = c.attention_bias;
  j["use_sliding_window"] = false;
  j.erase("num_local_experts");
  j["num_experts"] = c.num_local_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["router_aux_loss_coef"] = c.router_aux_loss_coef;
  j["norm_topk_prob"] = c.moe_renormalize;
  j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = nlohmann::json::array();
}

}  // namespace forma::arch::qwen2_moe

namespace forma {

extern const Architecture kQwen2Moe{.model_type = "qwen2_moe",
                                    .hf_class = "Qwen2MoeForCausalLM",
                                    .read_config = arch::qwen2_moe::read,
                                    .write_config = arch::qwen2_moe::write,
                                    .weight_rules = arch::qwen2_moe::rules,
                                    .qkv_bias = if_attention_bias,
                                    .o_bias = never,
                                    .mlp_bias = never};

}  // namespace forma
