// Attention beyond what the HF fixtures exercise (hf_fixture_test.cpp checks both kernels against
// transformers): which calls need a mask, the masks by hand, and on every fixture, with the fused
// and the explicit kernel, a KV cache filled in chunks (queries that start past position 0, and
// mistral's window crossed) and left-padded batch rows giving the logits of a plain run; and
// `forma bench attention`, whose two kernels must compute the same loss.
#include "forma/model/attention.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

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
