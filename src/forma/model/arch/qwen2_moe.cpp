// Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen2's attention (biased q/k/v, o without) with
// a sparse block in its layers (all, unless decoder_sparse_step / mlp_only_layers make some dense
// SwiGLU MLPs of width intermediate_size): softmax router, top-k, the chosen probabilities as they are
// unless norm_topk_prob (moe_renormalize), plus a shared SwiGLU expert every token goes through,
// scaled by sigmoid(shared_expert_gate(x)) and added (shared_expert_intermediate_size).
// HF names the block mlp (mlp.gate, mlp.experts.{E}.*, mlp.shared_expert.*, mlp.shared_expert_gate);
// forma holds it as block_sparse_moe, the routed experts under Mixtral's names (qwen3_moe's rules).
// The experts' width is moe_intermediate_size (forma's intermediate_size); the dense layers' is
// intermediate_size (forma's dense_intermediate_size).
#include <string>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// qwen3_moe.cpp's map of HF's per-expert names onto forma's block_sparse_moe.
namespace forma::arch::qwen3_moe {
std::vector<WeightRule> rules(const ModelConfig& c);
}  // namespace forma::arch::qwen3_moe

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::qwen2_moe {

// Qwen2MoeConfig's defaults (configuration_qwen2_moe.py); intermediate_size is the dense layers'
// (the experts' moe_intermediate_size: 1408).
constexpr StandardDefaults kDefaults{151936, 2048, 5632, 24, 16, 16, "silu", 32768, 1e-6, 1e4, 4096, -1, -1, false};

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
  // With use_sliding_window false HF ignores sliding_window (and writes 0 there, which forma's
  // window check would refuse): it stays in extra, untouched.
  const bool sliding = r.boolean("use_sliding_window", false);
  const nlohmann::json window = sliding ? nlohmann::json() : r.take("sliding_window");
  read_standard_fields(r, kDefaults, c);  // intermediate_size: the dense layers' width
  c.dense_intermediate_size = c.intermediate_size;
  c.intermediate_size = r.integer("moe_intermediate_size", 1408);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("qkv_bias", true);  // transformers 4 had no field: always biased
  c.use_sliding_window = sliding;
  c.sliding_window = sliding ? r.optional_integer("sliding_window", kDefaults.sliding_window) : std::nullopt;
  read_sliding_layers(original, c, SlidingLayersRule::EvenBelowMaxWindowLayers);
  read_moe_fields(r, MoeDefaults{60, 4, 0.001}, c);
  c.shared_expert_intermediate_size = r.integer("shared_expert_intermediate_size", 5632);
  check(c.shared_expert_intermediate_size > 0, "{}: field 'shared_expert_intermediate_size' must be positive, got {}",
        c.source, c.shared_expert_intermediate_size);
  // HF: layer i is sparse unless listed in mlp_only_layers or (i + 1) % decoder_sparse_step != 0;
  // the others are dense SwiGLU MLPs of the dense intermediate_size.
  read_sparse_layers(original, c);
  nlohmann::json rest = r.rest();
  if (!sliding && (!window.is_null() || original.contains("sliding_window"))) rest["sliding_window"] = window;
  r = FieldReader(rest, r.source());
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["intermediate_size"] = c.dense_intermediate_size;
  j["moe_intermediate_size"] = c.intermediate_size;
  j["qkv_bias"] = c.attention_bias;
  j["use_sliding_window"] = c.use_sliding_window;
  if (c.use_sliding_window) write_sliding_window(c, j);
  write_moe_fields(c, j);
  j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
  write_sparse_layers(c, j);
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
