// DeepSeek-V2/V3 beyond the registry-driven fixture tests (which compare logits, loss, gradients,
// greedy decoding and save/load with transformers): the routers by hand, and what is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "forma/model/config.h"
#include "forma/model/mla_attention.h"
#include "forma/model/mlp.h"
#include "forma/model/model_stats.h"
#include "test_paths.h"

namespace forma {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double silu(double x) { return x * sigmoid(x); }

// 4 experts in 2 groups, top-2, hidden 2, width 1. Token x = (1, 0): router logits are the gate's
// first column; expert e computes w2 * silu(x0) * x0 with w2 = (e + 1, 0), so the block's output is
// silu(1) * sum over chosen e of weight_e * (e + 1) in dim 0 and 0 in dim 1.
const double kLogits[4] = {0.5, -1.0, 2.0, 0.1};

SparseMoe routing_block(ModelConfig c) {
  c.hidden_size = 2;
  c.intermediate_size = 1;
  c.num_local_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_groups = 2;
  c.moe_topk_groups = 1;
  SparseMoe moe(c);
  torch::NoGradGuard no_grad;
  auto params = moe->named_parameters();
  for (int e = 0; e < 4; ++e) {
    params["gate.weight"][e][0].fill_(kLogits[e]);
    params["gate.weight"][e][1].fill_(0.0);
    const std::string p = "experts." + std::to_string(e) + ".";
    params[p + "w1.weight"].copy_(torch::tensor({{1.0f, 0.0f}}));
    params[p + "w3.weight"].copy_(torch::tensor({{1.0f, 0.0f}}));
    params[p + "w2.weight"].copy_(torch::tensor({{static_cast<float>(e + 1)}, {0.0f}}));
  }
  return moe;
}

double routed_output(SparseMoe& moe) {
  torch::NoGradGuard no_grad;
  torch::Tensor out = moe->forward(torch::tensor({{{1.0f, 0.0f}}})).first;  // [1, 1, 2]
  EXPECT_EQ(out[0][0][1].item<double>(), 0.0);
  return out[0][0][0].item<double>();
}

// V2's group_limited_greedy: softmax, groups scored by their best expert; group {2, 3} holds the
// best (logit 2.0), so experts 2 and 3 are chosen although expert 0 (0.5) beats expert 3 (0.1);
// probabilities as they are, times routed_scaling_factor 1.5.
TEST(DeepSeekRouting, SoftmaxGroupLimitedGreedyByHand) {
  ModelConfig c;
  c.moe_renormalize = false;
  c.routed_scaling_factor = 1.5;
  SparseMoe moe = routing_block(c);
  double z = 0;
  for (double l : kLogits) z += std::exp(l);
  const double p2 = std::exp(kLogits[2]) / z, p3 = std::exp(kLogits[3]) / z;
  EXPECT_NEAR(routed_output(moe), silu(1.0) * 1.5 * (3 * p2 + 4 * p3), 1e-6);
}

// V3's noaux_tc: sigmoid scores plus e_score_correction_bias (3 on expert 1) choose, groups scored
// by their top-2 sum: group {0, 1} wins only through the bias, then experts 0 and 1; the weights
// are the plain sigmoid scores renormalised, times routed_scaling_factor 2.5.
TEST(DeepSeekRouting, SigmoidScoresWithCorrectionBiasByHand) {
  ModelConfig c;
  c.moe_sigmoid_scores = true;
  c.moe_renormalize = true;
  c.routed_scaling_factor = 2.5;
  SparseMoe moe = routing_block(c);
  {
    torch::NoGradGuard no_grad;
    moe->named_parameters()["gate.e_score_correction_bias"].copy_(torch::tensor({0.0f, 3.0f, 0.0f, 0.0f}));
  }
  const double s0 = sigmoid(kLogits[0]), s1 = sigmoid(kLogits[1]);
  EXPECT_NEAR(routed_output(moe), silu(1.0) * 2.5 * (1 * s0 + 2 * s1) / (s0 + s1), 1e-6);
  // The bias is HF's buffer: in the weights, never trained.
  EXPECT_FALSE(moe->named_parameters()["gate.e_score_correction_bias"].requires_grad());
}

ModelConfig deepseek_v2_fixture() { return load_model_config(test::fixture("hf-zoo/deepseek_v2") + "/config.json"); }

// HF's config sets head_dim to qk_rope_head_dim: the width of the RoPE tables.
TEST(DeepSeekConfig, LatentAttentionSizesFromTheFixture) {
  ModelConfig c = deepseek_v2_fixture();
  EXPECT_EQ(c.kv_lora_rank, 16);
  EXPECT_EQ(c.q_lora_rank, 0);  // null: q_proj
  EXPECT_EQ(c.qk_nope_head_dim, 8);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.v_head_dim, 8);
  EXPECT_EQ(c.moe_groups, 2);
  EXPECT_EQ(c.moe_topk_groups, 1);
  EXPECT_EQ(c.sparse_layers, std::vector<bool>({false, true, true}));  // first_k_dense_replace 1
  // Round trip through to_hf_json.
  ModelConfig back = parse_model_config(to_hf_json(c), "round trip");
  EXPECT_EQ(back.kv_lora_rank, 16);
  EXPECT_EQ(back.qk_nope_head_dim, 8);
  EXPECT_EQ(back.head_dim, 4);
  EXPECT_EQ(back.sparse_layers, c.sparse_layers);
  EXPECT_EQ(back.routed_scaling_factor, 1.5);
  EXPECT_EQ(back.moe_groups, 2);
}

TEST(DeepSeekConfig, UnsupportedTopkMethodIsRefusedByName) {
  nlohmann::json j = to_hf_json(deepseek_v2_fixture());
  j["topk_method"] = "noaux_tc";
  std::string error = test::error_of([&] { parse_model_config(j, "ds.json"); });
  EXPECT_NE(error.find("ds.json"), std::string::npos) << error;
  EXPECT_NE(error.find("topk_method"), std::string::npos) << error;
}

// The paged cache holds one head width for k and v; MLA's differ (qk_nope + rope vs v_head_dim).
// yarn with mscale_all_dim scales the softmax by mscale^2 (HF yarn_apply_mscale):
// DeepSeek-V2-Lite: factor 40, mscale_all_dim 0.707 -> (0.1 * 0.707 * ln 40 + 1)^2 / sqrt(192).
TEST(DeepSeekConfig, YarnSoftmaxScaleByHand) {
  ModelConfig c = load_model_config("deepseek-v2-lite");
  const double m = 0.1 * 0.707 * std::log(40.0) + 1.0;
  EXPECT_NEAR(mla_softmax_scale(c), m * m / std::sqrt(192.0), 1e-12);
  EXPECT_NEAR(mla_softmax_scale(deepseek_v2_fixture()), 1.0 / std::sqrt(12.0), 1e-12);
}

// forma's cache holds each head's k (8 nope + 4 rope dims) and v (8): 3 layers x 4 heads x 20
// values per position; the attention products likewise use q.k over 12 dims and v over 8.
TEST(DeepSeekConfig, CacheBytesAndAttentionFlopsByHand) {
  ModelConfig c = deepseek_v2_fixture();
  EXPECT_EQ(kv_cache_bytes(c, 2, 10, 4), 3.0 * 2 * 10 * 4 * 20 * 4);
  const double n = static_cast<double>(count_parameters(c).matmul_active);
  EXPECT_NEAR(training_flops_per_token(c, 16) - 6 * n, 6.0 * 3 * 4 * 20 * 16, 1e-6);
  EXPECT_NEAR(inference_flops_per_token(c, 16) - 2 * n, 2.0 * 3 * 4 * 20 * 16, 1e-6);
}

}  // namespace
}  // namespace forma
