#include "forma/infer/sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

#include "forma/core/error.h"

namespace forma::infer {

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}

void SamplingConfig::validate() const {
  check(std::isfinite(temperature) && temperature >= 0.0,
        "sampling: temperature must be >= 0 (0 = greedy), got {}", temperature);
  check(top_k >= 0, "sampling: top_k must be >= 0 (0 = off), got {}", top_k);
  check(std::isfinite(top_p) && top_p > 0.0 && top_p <= 1.0,
        "sampling: top_p must be in (0, 1] (1 = off), got {}", top_p);
  check(std::isfinite(min_p) && min_p >= 0.0 && min_p <= 1.0,
        "sampling: min_p must be in [0, 1] (0 = off), got {}", min_p);
  check(std::isfinite(repetition_penalty) && repetition_penalty > 0.0,
        "sampling: repetition_penalty must be > 0 (1 = off), got {}", repetition_penalty);
}

torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen,
                                       double penalty) {
  if (penalty == 1.0) return logits.clone();
  // HF: negative logits are multiplied, others divided, so a seen token always becomes less likely.
  auto penalized = torch::where(logits < 0, logits * penalty, logits / penalty);
  return torch::where(seen, penalized, logits);
}

torch::Tensor apply_temperature(const torch::Tensor& logits, double temperature) {
  check(temperature > 0.0, "sampling: temperature must be > 0 to scale logits, got {}", temperature);
  return logits / temperature;
}

torch::Tensor apply_top_k(const torch::Tensor& logits, int64_t top_k) {
  int64_t vocab = logits.size(-1);
  if (top_k <= 0 || top_k >= vocab) return logits.clone();
  // Everything strictly below the k-th largest value goes; ties with it stay (as HF).
  auto kth = std::get<0>(logits.topk(top_k, -1)).narrow(-1, top_k - 1, 1);
  return logits.masked_fill(logits < kth, kNegInf);
}

torch::Tensor apply_top_p(const torch::Tensor& logits, double top_p) {
  if (top_p >= 1.0) return logits.clone();
  // HF's formulation: sort ascending, drop the tokens whose cumulative probability (from the
  // least likely up) stays <= 1 - p, always keep the most likely one.
  auto [sorted, order] = logits.sort(-1, /*descending=*/false);
  auto cumulative = sorted.softmax(-1).cumsum(-1);
  auto remove_sorted = cumulative <= (1.0 - top_p);
  remove_sorted.narrow(-1, logits.size(-1) - 1, 1).fill_(false);
  auto remove = remove_sorted.scatter(-1, order, remove_sorted);
  return logits.masked_fill(remove, kNegInf);
}

torch::Tensor apply_min_p(const torch::Tensor& logits, double min_p) {
  if (min_p <= 0.0) return logits.clone();
  auto probs = logits.softmax(-1);
  auto threshold = std::get<0>(probs.max(-1, /*keepdim=*/true)) * min_p;
  // The most likely token has prob == max >= threshold, so at least one token always survives.
  return logits.masked_fill(probs < threshold, kNegInf);
}

torch::Tensor process_logits(const torch::Tensor& logits, const torch::Tensor& seen,
                             const SamplingConfig& config) {
  auto out = apply_repetition_penalty(logits, seen, config.repetition_penalty);
  if (config.greedy()) return out;
  if (config.temperature != 1.0) out = apply_temperature(out, config.temperature);
  if (config.top_k > 0) out = apply_top_k(out, config.top_k);
  if (config.top_p < 1.0) out = apply_top_p(out, config.top_p);
  if (config.min_p > 0.0) out = apply_min_p(out, config.min_p);
  return out;
}

Sampler::Sampler(const SamplingConfig& config, uint64_t seed, int64_t vocab_size)
    : config_(config),
      vocab_size_(vocab_size),
      seen_(torch::zeros({vocab_size}, torch::kBool)),
      generator_(at::detail::createCPUGenerator(seed)) {
  config_.validate();
  check(vocab_size > 0, "sampling: vocabulary size must be positive, got {}", vocab_size);
}

void Sampler::observe(const std::vector<int32_t>& tokens) {
  auto* seen = seen_.data_ptr<bool>();
  for (int32_t token : tokens) {
    check(token >= 0 && token < vocab_size_, "sampling: token id {} outside vocabulary [0, {})",
          token, vocab_size_);
    seen[token] = true;
  }
}

int32_t Sampler::next(const torch::Tensor& logits) {
  check(logits.dim() == 1 && logits.size(0) == vocab_size_,
        "sampling: expected a logits row of {} values, got shape {}", vocab_size_,
        fmt::join(logits.sizes(), "x"));
  auto row = logits.detach().to(torch::kCPU, torch::kFloat);
  check(!row.isnan().any().item<bool>(), "sampling: the model produced NaN logits");
  auto processed = process_logits(row, seen_, config_);
  int32_t token;
  if (config_.greedy()) {
    token = static_cast<int32_t>(processed.argmax().item<int64_t>());
  } else {
    auto probs = processed.softmax(-1);
    token = static_cast<int32_t>(torch::multinomial(probs, 1, false, generator_).item<int64_t>());
  }
  observe({token});
  return token;
}

}  // namespace forma::infer
