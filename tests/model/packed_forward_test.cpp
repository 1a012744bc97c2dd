// Packed samples (several in one row, PackedPositions) compute what each computes alone: the
// logits and the per-sample losses of a packed row equal those of separate forwards, for RoPE
// (llama), learned positions (gpt2), ALiBi (bloom) and a sliding window shorter than the samples (mistral), with
// the fused and the explicit attention kernels.
#include <gtest/gtest.h>

#include "forma/model/causal_lm.h"
#include "forma/model/hf_io.h"
#include "test_paths.h"

namespace forma {
namespace {

struct PackCase {
  const char* arch;
  AttentionKernel kernel;
};

class PackedForward : public ::testing::TestWithParam<PackCase> {};

TEST_P(PackedForward, SamplesPackedInARowComputeAsAlone) {
  torch::NoGradGuard no_grad;
  CausalLM model = load_pretrained(test::fixture(GetParam().arch));
  model->eval();
  model->set_attention_kernel(GetParam().kernel);
  torch::manual_seed(3);
  const std::vector<int64_t> lengths = {5, 12, 7};
  const int64_t width = 28;  // 24 tokens and 4 of padding
  std::vector<torch::Tensor> samples;
  torch::Tensor ids = torch::zeros({1, width}, torch::kInt64);
  torch::Tensor positions = torch::zeros({1, width}, torch::kInt64);
  torch::Tensor segments = torch::full({1, width}, -1, torch::kInt64);
  int64_t at = 0;
  for (size_t s = 0; s < lengths.size(); ++s) {
    samples.push_back(torch::randint(0, model->config().vocab_size, {1, lengths[s]}, torch::kInt64));
    ids.narrow(1, at, lengths[s]).copy_(samples.back());
    positions.narrow(1, at, lengths[s]).copy_(torch::arange(lengths[s]));
    segments.narrow(1, at, lengths[s]).fill_(static_cast<int64_t>(s));
    at += lengths[s];
  }
  PackedPositions packed{positions, segments};
  torch::Tensor packed_logits = model->forward_packed(ids, &packed);  // [1, width, V]
  at = 0;
  for (size_t s = 0; s < lengths.size(); ++s) {
    SCOPED_TRACE("sample " + std::to_string(s));
    torch::Tensor alone = model->forward(samples[s]);
    torch::Tensor in_row = packed_logits.narrow(1, at, lengths[s]);
    EXPECT_LT((alone - in_row).abs().max().item<double>(), 1e-5);
    const double loss_alone = causal_lm_loss(alone, samples[s]).item<double>();
    const double loss_packed = causal_lm_loss(in_row, samples[s]).item<double>();
    EXPECT_NEAR(loss_packed, loss_alone, 1e-5);
    at += lengths[s];
  }
  // Without the segments the second sample would see the first: the check above can fail.
  torch::Tensor plain = model->forward(ids);
  EXPECT_GT((plain.narrow(1, 5, 12) - model->forward(samples[1])).abs().max().item<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Archs, PackedForward,
                         ::testing::Values(PackCase{"hf-tiny/llama", AttentionKernel::Fused},
                                           PackCase{"hf-tiny/llama", AttentionKernel::Explicit},
                                           PackCase{"hf-tiny/gpt2", AttentionKernel::Fused},
                                           PackCase{"hf-tiny/mistral", AttentionKernel::Fused},
                                           PackCase{"hf-tiny/mistral", AttentionKernel::Explicit},
                                           // full and sliding-window layers in one model
                                           PackCase{"hf-zoo/qwen2_sliding", AttentionKernel::Fused},
                                           // soft-capped scores (explicit even when fused is asked
                                           // for), and the sliding layers' own RoPE
                                           PackCase{"hf-zoo/gemma2", AttentionKernel::Fused},
                                           PackCase{"hf-zoo/gemma3", AttentionKernel::Fused},
                                           // ALiBi (relative distances, no positions)
                                           PackCase{"hf-zoo/bloom", AttentionKernel::Fused},
                                           PackCase{"hf-zoo/bloom", AttentionKernel::Explicit}),
                         [](const auto& info) {
                           std::string name = info.param.arch;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name +
                                  (info.param.kernel == AttentionKernel::Fused ? "_fused" : "_explicit");
                         });

}  // namespace
}  // namespace forma
