#include "forma/parallel/vocab_parallel_loss.h"

#include "forma/core/error.h"
#include "forma/parallel/collectives.h"
#include "forma/parallel/tp_regions.h"

namespace forma::parallel {

torch::Tensor vocab_parallel_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                           const GroupPtr& group, int64_t vocab_start, int64_t vocab_size,
                                           int64_t ignore_index) {
  check(logits.dim() >= 1 && targets.dim() == logits.dim() - 1 &&
            targets.sizes() == logits.sizes().slice(0, logits.dim() - 1),
        "vocab_parallel_cross_entropy: logits [..., V] and targets [...] disagree: {} vs {}",
        fmt::format("{}", fmt::join(logits.sizes(), "x")), fmt::format("{}", fmt::join(targets.sizes(), "x")));
  const int64_t width = logits.size(-1);
  check(width > 0, "vocab_parallel_cross_entropy: this rank holds no vocabulary columns");
  torch::Tensor x = logits.reshape({-1, width}).to(torch::kFloat);
  torch::Tensor t = targets.reshape({-1}).to(torch::kLong);
  torch::Tensor counted = t.ne(ignore_index);
  if (counted.any().item<bool>()) {
    torch::Tensor ids = t.masked_select(counted);
    const int64_t low = ids.min().item<int64_t>(), high = ids.max().item<int64_t>();
    check(low >= 0 && high < vocab_size, "cross entropy: target {} is outside the vocabulary of {} ids",
          low < 0 ? low : high, vocab_size);
  }
  // log-sum-exp over the whole vocabulary, stabilised by the global max (a constant for autograd:
  // it cancels out of the loss).
  torch::Tensor max;
  {
    torch::NoGradGuard no_grad;
    max = std::get<0>(x.max(-1)).contiguous();
    all_reduce_max(group, max);
  }
  torch::Tensor shifted = x - max.unsqueeze(1);
  torch::Tensor sum_exp = reduce_from_tp_region(shifted.exp().sum(-1), group);
  // The target's logit lives on one rank; the others contribute zero.
  torch::Tensor local = t - vocab_start;
  torch::Tensor here = local.ge(0).logical_and(local.lt(width));
  torch::Tensor picked = shifted.gather(1, local.clamp(0, width - 1).unsqueeze(1)).squeeze(1);
  torch::Tensor target_logit = reduce_from_tp_region(picked.masked_fill(here.logical_not(), 0.0), group);
  torch::Tensor per_token = (sum_exp.log() - target_logit).masked_fill(counted.logical_not(), 0.0);
  return per_token.sum() / counted.sum();  // as torch: NaN when every target is ignored
}

torch::Tensor gather_vocab_logits(const torch::Tensor& logits, const GroupPtr& group, int64_t vocab_size) {
  const int64_t n = group->getSize();
  if (n == 1) return logits;
  const int64_t slice = (vocab_size + n - 1) / n;
  check(logits.size(-1) <= slice, "gather_vocab_logits: {} local columns, more than ceil({} / {})",
        logits.size(-1), vocab_size, n);
  torch::Tensor padded = torch::constant_pad_nd(logits, {0, slice - logits.size(-1)});
  return gather_from_sequence_region(padded, group, -1, GatheredGrad::Full).narrow(-1, 0, vocab_size);
}

}  // namespace forma::parallel
