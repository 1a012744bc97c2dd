// DeepSeek-V3 (V3, R1): DeepSeek-V2's layer (deepseek_v2.cpp: MLA, shared experts, dense first
// layers) with V3's router: sigmoid scores, the e_score_correction_bias buffer (in the checkpoint;
// forma holds it as a parameter without gradient) added for the choice only, n_group groups scored
// by the sum of their two best, the topk_group best kept, the chosen plain scores renormalised
// (norm_topk_prob) and times routed_scaling_factor. RoPE pairs adjacent dims unless rope_interleave
// is false. The multi-token-prediction layers (num_nextn_predict_layers) are not part of HF's
// model either: their config key stays in extra.
#include <string>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

namespace forma::arch::deepseek_v2 {
std::vector<WeightRule> rules(const ModelConfig& c);
void read_common(FieldReader& r, const nlohmann::json& original, const StandardDefaults& d, bool v3, ModelConfig& c);
void write_common(const ModelConfig& c, const StandardDefaults& d, nlohmann::json& j);
}  // namespace forma::arch::deepseek_v2

namespace forma::arch::deepseek_v3 {

// DeepseekV3Config's defaults (configuration_deepseek_v3.py).
constexpr StandardDefaults kDefaults{129280, 7168, 18432, 61, 128, 128, "silu", 4096, 1e-6, 1e4, 0, 0, 1, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  deepseek_v2::read_common(r, original, kDefaults, /*v3=*/true, c);
  // Checkpoints of the original code name the method; HF's V3 implements only noaux_tc.
  const std::string method = r.string("topk_method", "noaux_tc");
  check(method == "noaux_tc", "{}: field 'topk_method': '{}' is not supported for model_type 'deepseek_v3' (noaux_tc)",
        c.source, method);
  const int64_t group_size = c.num_local_experts / c.moe_groups;
  check(group_size >= 2, "{}: field 'n_group' ({}) leaves fewer than 2 experts per group (V3 scores a group by its top 2)",
        c.source, c.moe_groups);
  c.moe_sigmoid_scores = true;
  c.moe_renormalize = r.boolean("norm_topk_prob", true);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  deepseek_v2::write_common(c, kDefaults, j);
  j["rope_interleave"] = c.rope_interleaved;
  j["norm_topk_prob"] = c.moe_renormalize;
}

}  // namespace forma::arch::deepseek_v3

namespace forma {

extern const Architecture kDeepseekV3{.model_type = "deepseek_v3",
                                      .hf_class = "DeepseekV3ForCausalLM",
                                      .read_config = arch::deepseek_v3::read,
                                      .write_config = arch::deepseek_v3::write,
                                      .weight_rules = arch::deepseek_v2::rules,
                                      .qkv_bias = never,
                                      .o_bias = never,
                                      .mlp_bias = never};

}  // namespace forma
