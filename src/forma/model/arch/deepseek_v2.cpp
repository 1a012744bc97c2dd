// DeepSeek-V2 (V2, V2-Lite): Llama's layer with multi-head latent attention (kv_lora_rank > 0,
// mla_attention.h; q from q_proj, or through a q_lora_rank latent) and DeepSeek's MoE from layer
// first_k_dense_replace on (the layers before are dense SwiGLU MLPs of intermediate_size):
// n_routed_experts of width moe_intermediate_size, softmax router, topk_method "greedy" or
// "group_limited_greedy" (n_group groups scored by their best expert, the topk_group best kept),
// the chosen probabilities as they are (HF's V2 ignores norm_topk_prob) times routed_scaling_factor,
// plus n_shared_experts shared experts as one SwiGLU of n_shared_experts * moe_intermediate_size,
// ungated. RoPE on qk_rope_head_dim dims (forma's head_dim, as HF's config) in adjacent pairs.
// HF names the block mlp (mlp.gate, mlp.experts.{E}.*, mlp.shared_experts.*); forma holds it as
// block_sparse_moe (qwen3_moe's rules for the routed experts, shared_expert for the shared ones).
#include <string>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

namespace forma::arch::qwen3_moe {
std::vector<WeightRule> rules(const ModelConfig& c);
}  // namespace forma::arch::qwen3_moe

namespace forma::arch::deepseek_v2 {

// DeepseekV2Config's defaults (configuration_deepseek_v2.py).
constexpr StandardDefaults kDefaults{102400, 4096, 11008, 32, 32, 0, "silu", 2048, 1e-6, 1e4, 0, 1, 2, false};

std::vector<WeightRule> rules(const ModelConfig& c) {
  std::vector<WeightRule> out = qwen3_moe::rules(c);
  const std::string hf = "model.layers.{L}.mlp.", ours = "model.layers.{L}.block_sparse_moe.";
  for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
    out.push_back({hf + "shared_experts." + proj + ".weight", {ours + "shared_expert." + proj + ".weight"}});
  }
  out.push_back({hf + "gate.e_score_correction_bias", {ours + "gate.e_score_correction_bias"}});
  return out;
}

// What V2 and V3 share: MLA sizes, the MoE sizes and groups, dense layers. `v3`: V3's defaults.
void read_common(FieldReader& r, const nlohmann::json& original, const StandardDefaults& d, bool v3, ModelConfig& c) {
  read_standard_fields(r, d, c);
  read_special_tokens(r, original, d.bos, d.eos, c);
  c.kv_lora_rank = r.integer("kv_lora_rank", 512);
  c.q_lora_rank = r.optional_integer("q_lora_rank", 1536).value_or(0);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim", 128);
  c.head_dim = r.integer("qk_rope_head_dim", 64);  // HF sets head_dim to it: the RoPE tables' width
  c.v_head_dim = r.integer("v_head_dim", 128);
  for (auto [key, value] : {std::pair{"kv_lora_rank", c.kv_lora_rank}, std::pair{"qk_nope_head_dim", c.qk_nope_head_dim},
                            std::pair{"qk_rope_head_dim", c.head_dim}, std::pair{"v_head_dim", c.v_head_dim}}) {
    check(value > 0, "{}: field '{}' must be positive, got {}", c.source, key, value);
  }
  check(c.q_lora_rank >= 0, "{}: field 'q_lora_rank' must be positive or null, got {}", c.source, c.q_lora_rank);
  check(c.head_dim % 2 == 0, "{}: field 'qk_rope_head_dim' must be even, got {}", c.source, c.head_dim);
  c.num_key_value_heads = c.num_attention_heads;  // every head has its own k and v (from the latent)
  c.rope_interleaved = v3 ? r.boolean("rope_interleave", true) : true;
  c.dense_intermediate_size = c.intermediate_size;
  c.intermediate_size = r.integer("moe_intermediate_size", v3 ? 2048 : 1407);
  c.num_local_experts = r.integer("n_routed_experts", v3 ? 256 : 64);
  check(c.num_local_experts > 0, "{}: field 'n_routed_experts' must be positive, got {}", c.source, c.num_local_experts);
  const std::optional<int64_t> top_k = r.optional_integer("num_experts_per_tok", v3 ? std::optional<int64_t>(8) : std::nullopt);
  check(top_k.has_value() && *top_k > 0 && *top_k <= c.num_local_experts,
        "{}: field 'num_experts_per_tok' must be between 1 and n_routed_experts={}", c.source, c.num_local_experts);
  c.num_experts_per_tok = *top_k;
  const int64_t shared = r.integer("n_shared_experts", v3 ? 1 : 2);
  check(shared >= 0, "{}: field 'n_shared_experts' must be >= 0, got {}", c.source, shared);
  c.shared_expert_intermediate_size = shared * c.intermediate_size;
  c.shared_expert_ungated = true;
  c.routed_scaling_factor = r.number("routed_scaling_factor", v3 ? 2.5 : 1.0);
  c.moe_groups = r.optional_integer("n_group", v3 ? std::optional<int64_t>(8) : std::nullopt).value_or(1);
  c.moe_topk_groups = r.optional_integer("topk_group", v3 ? std::optional<int64_t>(4) : std::nullopt).value_or(1);
  check(c.moe_groups >= 1 && c.num_local_experts % c.moe_groups == 0,
        "{}: field 'n_group' ({}) must divide n_routed_experts ({})", c.source, c.moe_groups, c.num_local_experts);
  check(c.moe_topk_groups >= 1 && c.moe_topk_groups <= c.moe_groups,
        "{}: field 'topk_group' ({}) must be between 1 and n_group ({})", c.source, c.moe_topk_groups, c.moe_groups);
  const int64_t first_dense = r.integer("first_k_dense_replace", v3 ? 3 : 0);
  check(first_dense >= 0, "{}: field 'first_k_dense_replace' must be >= 0, got {}", c.source, first_dense);
  c.sparse_layers.clear();
  if (first_dense > 0) {
    for (int64_t i = 0; i < std::min<int64_t>(c.num_hidden_layers, 1 << 16); ++i) c.sparse_layers.push_back(i >= first_dense);
  }
  c.router_aux_loss_coef = 0.0;  // HF's DeepSeek models add no load-balancing loss
}

void write_common(const ModelConfig& c, const StandardDefaults& d, nlohmann::json& j) {
  write_standard_fields(c, d, j);
  write_special_tokens(c, j);
  j["intermediate_size"] = c.dense_intermediate_size;
  j["moe_intermediate_size"] = c.intermediate_size;
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["q_lora_rank"] = c.q_lora_rank > 0 ? nlohmann::json(c.q_lora_rank) : nlohmann::json();
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.head_dim;
  j["head_dim"] = c.head_dim;
  j["v_head_dim"] = c.v_head_dim;
  j.erase("num_local_experts");
  j["n_routed_experts"] = c.num_local_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["n_shared_experts"] = c.shared_expert_intermediate_size / c.intermediate_size;
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["n_group"] = c.moe_groups;
  j["topk_group"] = c.moe_topk_groups;
  int64_t first_dense = 0;
  while (first_dense < static_cast<int64_t>(c.sparse_layers.size()) && !c.sparse_layers[first_dense]) ++first_dense;
  j["first_k_dense_replace"] = first_dense;
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_common(r, original, kDefaults, /*v3=*/false, c);
  const std::string method = r.string("topk_method", "greedy");
  check(method == "greedy" || method == "group_limited_greedy",
        "{}: field 'topk_method': '{}' is not supported for model_type 'deepseek_v2' (greedy, group_limited_greedy)",
        c.source, method);
  if (method == "greedy") c.moe_groups = c.moe_topk_groups = 1;  // HF ignores the groups then
  c.moe_renormalize = false;  // HF's V2 router never renormalises (norm_topk_prob stays in extra)
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_common(c, kDefaults, j);
  j["topk_method"] = c.moe_groups > 1 ? "group_limited_greedy" : "greedy";
  if (c.moe_groups == 1) j["n_group"] = nullptr, j["topk_group"] = nullptr;
}

}  // namespace forma::arch::deepseek_v2

namespace forma {

extern const Architecture kDeepseekV2{.model_type = "deepseek_v2",
                                      .hf_class = "DeepseekV2ForCausalLM",
                                      .read_config = arch::deepseek_v2::read,
                                      .write_config = arch::deepseek_v2::write,
                                      .weight_rules = arch::deepseek_v2::rules,
                                      .qkv_bias = never,
                                      .o_bias = never,
                                      .mlp_bias = never};

}  // namespace forma
