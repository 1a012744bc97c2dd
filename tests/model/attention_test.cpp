// Attention beyond what the HF fixtures exercise (hf_fixture_test.cpp checks both kernels against
// transformers): which calls need a mask, the masks by hand, and on every fixture, with the fused
// and the explicit kernel, a KV cache filled in chunks (queries that start past position 0, and
// mistral's window crossed) and left-padded batch rows giving the logits of a plain run; and
// `forma bench attention`, whose two kernels must compute the same loss.
#include "forma/model/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include <ATen/ops/scaled_dot_product_attention.h>

#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace forma {
namespace {

TEST(CausalMask, OnlyCallsThatAreNotPlainCausalNeedOne) {
  EXPECT_FALSE(needs_causal_mask(0, 16, 0));  // a whole sequence: is_causal
  EXPECT_FALSE(needs_causal_mask(9, 1, 0));   // one decode step sees every cached key
  EXPECT_TRUE(needs_causal_mask(5, 7, 0));    // a chunk after a prefix
  EXPECT_FALSE(needs_causal_mask(0, 8, 8));   // positions 0..7: a window of 8 cuts nothing
  EXPECT_TRUE(needs_causal_mask(0, 9, 8));    // position 8 no longer sees key 0
  EXPECT_FALSE(needs_causal_mask(6, 1, 8));
  EXPECT_TRUE(needs_causal_mask(8, 1, 8));
}

TEST(CausalMask, ByHand) {
  auto rows = [](const torch::Tensor& m) {
    std::vector<std::vector<int64_t>> out;
    torch::Tensor t = m.to(torch::kLong);
    for (int64_t i = 0; i < t.size(0); ++i) {
      out.emplace_back(t[i].data_ptr<int64_t>(), t[i].data_ptr<int64_t>() + t.size(1));
    }
    return out;
  };
  using Rows = std::vector<std::vector<int64_t>>;
  // Queries at positions 2 and 3 over keys 0..3.
  EXPECT_EQ(rows(causal_mask(2, 2, 0, torch::kCPU)), (Rows{{1, 1, 1, 0}, {1, 1, 1, 1}}));
  // A window of 2: each query sees itself and the key before.
  EXPECT_EQ(rows(causal_mask(0, 4, 2, torch::kCPU)),
            (Rows{{1, 0, 0, 0}, {1, 1, 0, 0}, {0, 1, 1, 0}, {0, 0, 1, 1}}));
  // Row 0 padded by 2 over positions 0..3: its padding queries see only themselves.
  torch::Tensor padded = padded_causal_mask(0, 4, 0, torch::tensor({2, 0}, torch::kLong));
  ASSERT_EQ(padded.sizes(), (std::vector<int64_t>{2, 1, 4, 4}));
  EXPECT_EQ(rows(padded[0][0]), (Rows{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 1, 1}}));
  EXPECT_EQ(rows(padded[1][0]), rows(causal_mask(0, 4, 0, torch::kCPU)));
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// HF's eager GQA: K and V repeated per query head (repeat_kv), then plain attention.
torch::Tensor repeated_kv_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    const torch::Tensor& allowed) {
  const int64_t group = q.size(1) / k.size(1);
  torch::Tensor kr = k.repeat_interleave(group, 1), vr = v.repeat_interleave(group, 1);
  torch::Tensor scores = torch::matmul(q, kr.transpose(2, 3)) / std::sqrt(static_cast<double>(q.size(3)));
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type()), vr);
}

TEST(GroupedAttention, EqualsRepeatedKvOnRandomInputs) {
  torch::manual_seed(3);
  // 12 query heads over 4 kv heads (llama-125m's grouping), MQA (1 kv head) and plain MHA; a chunk
  // of 3 queries after 4 cached keys, one decode query, and left-padded rows.
  struct Case { int64_t q_heads, kv_heads, count, keys; bool padded; };
  for (const Case& c : {Case{12, 4, 3, 7, false}, Case{12, 4, 1, 9, false}, Case{8, 1, 2, 5, true},
                        Case{6, 6, 4, 4, true}}) {
    const int64_t batch = 2, dim = 16;
    torch::Tensor q = torch::randn({batch, c.q_heads, c.count, dim});
    torch::Tensor k = torch::randn({batch, c.kv_heads, c.keys, dim});
    torch::Tensor v = torch::randn({batch, c.kv_heads, c.keys, dim});
    const int64_t start = c.keys - c.count;
    torch::Tensor allowed = c.padded ? padded_causal_mask(start, c.count, 0, torch::tensor({1, 0}, torch::kLong))
                                     : causal_mask(start, c.count, 0, torch::kCPU);
    torch::Tensor grouped = grouped_attention_products(q, k, v, allowed, std::sqrt(static_cast<double>(dim)));
    EXPECT_LT(max_abs_diff(grouped, repeated_kv_attention(q, k, v, allowed)), 1e-5)
        << c.q_heads << "/" << c.kv_heads << " heads, " << c.count << " queries";
    // The fused kernel's in-place GQA (enable_gqa) agrees too.
    torch::Tensor fused = at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, std::nullopt,
                                                           c.kv_heads != c.q_heads);
    EXPECT_LT(max_abs_diff(grouped, fused), 1e-5);
    // bf16 in, bf16 out, within bf16 rounding of the fp32 result.
    torch::Tensor grouped16 = grouped_attention_products(q.to(torch::kBFloat16), k.to(torch::kBFloat16),
                                                         v.to(torch::kBFloat16), allowed, std::sqrt(16.0));
    EXPECT_EQ(grouped16.scalar_type(), torch::kBFloat16);
    EXPECT_LT(max_abs_diff(grouped16, grouped), 0.05);
  }
}

TEST(KVCacheLayout, StaysInTheComputeDtypeAndAppendsInPlace) {
  KVCache cache(/*num_layers=*/2, /*max_length=*/8);
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16);
  auto [k0, v0] = cache.update(0, torch::randn({1, 2, 3, 4}, opts), torch::randn({1, 2, 3, 4}, opts));
  cache.update(1, torch::randn({1, 2, 3, 4}, opts), torch::randn({1, 2, 3, 4}, opts));
  cache.advance(3);
  torch::Tensor step = torch::randn({1, 2, 1, 4}, opts);
  auto [k1, v1] = cache.update(0, step, step);
  EXPECT_EQ(k1.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(v1.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(k1.sizes(), (std::vector<int64_t>{1, 2, 4, 4}));
  // The same preallocated storage, the new position written in place (no concatenation).
  EXPECT_EQ(k1.data_ptr(), k0.data_ptr());
  EXPECT_EQ(v1.data_ptr(), v0.data_ptr());
  EXPECT_TRUE(torch::equal(k1.narrow(2, 3, 1), step));

  // A bf16 model's cache holds bf16 keys after a forward.
  CausalLM model(load_model_config("tiny-llama"), torch::kBFloat16);
  model->init_weights(0);
  model->eval();
  torch::NoGradGuard no_grad;
  KVCache model_cache(model->config(), 6);
  model->forward(torch::tensor({{1, 2, 3}}, torch::kLong), &model_cache);
  auto [keys, values] = model_cache.update(0, torch::zeros({1, model->config().num_key_value_heads, 1,
                                                            model->config().head_dim}, opts),
                                           torch::zeros({1, model->config().num_key_value_heads, 1,
                                                         model->config().head_dim}, opts));
  EXPECT_EQ(keys.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(keys.size(2), 4);
}

class AttentionKernels : public ::testing::TestWithParam<std::tuple<std::string, AttentionKernel>> {
 protected:
  void SetUp() override {
    const std::string dir = test::fixture("hf-tiny/" + std::get<0>(GetParam()));
    model_ = load_pretrained(dir);
    model_->eval();
    model_->set_attention_kernel(std::get<1>(GetParam()));
    sequence_ = load_tensors(dir + "/reference.safetensors").at("generation.sequence");  // [1, 24]
  }
  CausalLM model_{nullptr};
  torch::Tensor sequence_;
};

TEST_P(AttentionKernels, CacheFilledInChunksEqualsNoCache) {
  torch::NoGradGuard no_grad;
  torch::Tensor full = model_->forward(sequence_)[0];  // [24, V]
  KVCache cache(model_->config(), sequence_.size(1));
  // A 5-token prefill, a 7-token chunk at positions 5..11 (a mask), then single steps to 23 (past
  // mistral's window of 8).
  std::vector<std::pair<int64_t, int64_t>> chunks = {{0, 5}, {5, 7}};
  for (int64_t p = 12; p < sequence_.size(1); ++p) chunks.emplace_back(p, 1);
  for (const auto& [start, count] : chunks) {
    torch::Tensor logits = model_->forward(sequence_.slice(1, start, start + count), &cache)[0];
    EXPECT_LT(max_abs_diff(logits, full.slice(0, start, start + count)), 1e-4) << "positions from " << start;
  }
}

TEST_P(AttentionKernels, LeftPaddedRowsEqualTheirOwnRuns) {
  torch::NoGradGuard no_grad;
  // Row 0: the first 10 tokens after 6 padding tokens; row 1: all 16. Then one decode step each.
  const int64_t pad = 6, width = 16;
  torch::Tensor ids = torch::stack({torch::cat({torch::zeros({pad}, torch::kLong), sequence_[0].slice(0, 0, width - pad)}),
                                    sequence_[0].slice(0, 0, width)});  // [2, 16]
  KVCache cache(model_->config(), width + 1);
  cache.set_left_padding(torch::tensor({pad, int64_t{0}}, torch::kLong));
  torch::Tensor batch = model_->forward(ids, &cache);  // [2, 16, V]
  torch::Tensor next = torch::stack({sequence_[0].slice(0, width - pad, width - pad + 1),
                                     sequence_[0].slice(0, width, width + 1)});  // [2, 1]
  torch::Tensor step = model_->forward(next, &cache);  // [2, 1, V]

  torch::Tensor short_run = model_->forward(sequence_.slice(1, 0, width - pad + 1))[0];  // [11, V]
  torch::Tensor long_run = model_->forward(sequence_.slice(1, 0, width + 1))[0];         // [17, V]
  EXPECT_LT(max_abs_diff(batch[0].slice(0, pad), short_run.slice(0, 0, width - pad)), 1e-4);
  EXPECT_LT(max_abs_diff(batch[1], long_run.slice(0, 0, width)), 1e-4);
  EXPECT_LT(max_abs_diff(step[0][0], short_run[width - pad]), 1e-4);
  EXPECT_LT(max_abs_diff(step[1][0], long_run[width]), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(All, AttentionKernels,
                         ::testing::Combine(::testing::Values("gpt2", "llama", "mistral", "qwen2", "mixtral"),
                                            ::testing::Values(AttentionKernel::Fused, AttentionKernel::Explicit)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == AttentionKernel::Fused ? "_fused" : "_explicit");
                         });

TEST(BenchAttentionCli, BothKernelsComputeTheSameLossAndReportPeakMemory) {
  // tiny-llama: 8 query heads over 4 kv heads; random weights and tokens from the same seed.
  std::map<std::string, nlohmann::json> runs;
  for (const std::string kernel : {"fused", "explicit"}) {
    test::CommandResult r = test::run_forma("bench attention --model tiny-llama --seq-len 96 --kernel " + kernel, false);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto lines = test::json_lines(r.output.substr(r.output.find('{')));
    ASSERT_EQ(lines.size(), 1u) << r.output;
    runs[kernel] = lines[0];
    EXPECT_GE(lines[0].at("peak_rss_mb").get<double>(), lines[0].at("rss_before_step_mb").get<double>());
  }
  EXPECT_NEAR(runs["fused"].at("loss").get<double>(), runs["explicit"].at("loss").get<double>(), 1e-5);
  test::CommandResult bad = test::run_forma("bench attention --model tiny-llama --kernel flash");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--kernel must be fused or explicit, not 'flash'"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace forma
