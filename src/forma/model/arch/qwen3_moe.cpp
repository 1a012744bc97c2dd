// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (q/k RMSNorm per head) with
// Mixtral's sparse block in its layers (all, unless decoder_sparse_step / mlp_only_layers make some
// dense SwiGLU MLPs of width intermediate_size): softmax router, top-k, weights renormalised when
// norm_topk_prob (moe_renormalize), no shared expert. HF names the block mlp (mlp.gate, mlp.experts.{E}.gate_proj /
// up_proj / down_proj); forma holds it as Mixtral's block_sparse_moe (gate, experts.{E}.w1/w3/w2).
// The experts' width is moe_intermediate_size (forma's intermediate_size); the dense layers' is
// intermediate_size (forma's dense_intermediate_size).
#include <string>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::qwen3_moe {

// Qwen3MoeConfig's defaults (configuration_qwen3_moe.py); intermediate_size is the dense layers'
// (the experts' moe_intermediate_size: 768).
constexpr StandardDefaults kDefaults{151936, 2048, 6144, 24, 32, 4, "silu", 32768, 1e-6, 1e4, 4096, -1, -1, false};

std::vector<WeightRule> rules(const ModelConfig& c) {
  const std::string hf = "model.layers.{L}.mlp.", ours = "model.layers.{L}.block_sparse_moe.";
  std::vector<WeightRule> out = {{hf + "gate.weight", {ours + "gate.weight"}}};
  for (int64_t e = 0; e < c.num_local_experts; ++e) {
    const std::string h = hf + "experts." + std::to_string(e) + ".", f = ours + "experts." + std::to_string(e) + ".";
    out.push_back({h + "gate_proj.weight", {f + "w1.weight"}});
    out.push_back({h + "up_proj.weight", {f + "w3.weight"}});
    out.push_back({h + "down_proj.weight", {f + "w2.weight"}});
  }
  return out;
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);  // intermediate_size: the dense layers' width
  c.dense_intermediate_size = c.intermediate_size;
  c.intermediate_size = r.integer("moe_intermediate_size", 768);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.sliding_window = r.optional_integer("sliding_window", kDefaults.sliding_window);
  // HF's Qwen3MoeConfig: the window on every layer when use_sliding_window, else none (the field
  // kept for the round trip).
  c.use_sliding_window = r.boolean("use_sliding_window", false);
  // Qwen3MoeConfig's default leaves the top-k probabilities as they are (norm_topk_prob false);
  // every published Qwen3-MoE config renormalises them.
  read_moe_fields(r, MoeDefaults{128, 8, 0.001}, c);
  // HF: layer i is sparse unless listed in mlp_only_layers or (i + 1) % decoder_sparse_step != 0;
  // the others are dense SwiGLU MLPs of the dense intermediate_size.
  read_sparse_layers(original, c);
  c.qk_norm = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["intermediate_size"] = c.dense_intermediate_size;
  j["moe_intermediate_size"] = c.intermediate_size;
  j["attention_bias"] = c.attention_bias;
  write_sliding_window(c, j);
  j["use_sliding_window"] = c.use_sliding_window;
  write_moe_fields(c, j);
  write_sparse_layers(c, j);
}

}  // namespace forma::arch::qwen3_moe

namespace forma {

extern const Architecture kQwen3Moe{.model_type = "qwen3_moe",
                                    .hf_class = "Qwen3MoeForCausalLM",
                                    .read_config = arch::qwen3_moe::read,
                                    .write_config = arch::qwen3_moe::write,
                                    .weight_rules = arch::qwen3_moe::rules,
                                    .qkv_bias = if_attention_bias,
                                    .o_bias = if_attention_bias,
                                    .mlp_bias = never};

}  // namespace forma
