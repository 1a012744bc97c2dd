// OLMoE (OLMoE-1B-7B): Llama's pre-norm layer with OLMo 2's RMSNorms over the whole q and k
// projections (every head at once, before the split into heads and RoPE), and a sparse block in
// every layer: softmax router, top-k, the chosen probabilities used as they are unless
// norm_topk_prob (moe_renormalize). clip_qkv clamps q, k, v after those norms (HF's order).
// HF names the block mlp (mlp.gate, mlp.experts.{E}.gate_proj / up_proj / down_proj): the same
// layout as Qwen3-MoE, whose rules this spec reuses.
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
  read_clip_qkv(r, c);
  read_moe_fields(r, MoeDefaults{64, 8, 0.01}, c);
  c.qk_norm_whole = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
  write_clip_qkv(c, j);
  write_moe_fields(c, j);
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
