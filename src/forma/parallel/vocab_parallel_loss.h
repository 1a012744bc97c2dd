// Cross entropy over logits split along the vocabulary (Megatron-LM's vocab-parallel loss): each
// rank holds logits [..., v] for ids [vocab_start, vocab_start + v); the max, the sum of
// exponentials and the target's logit are reduced over the group, so no rank ever holds the
// full-vocabulary logits. Differentiable: each rank's gradient is its slice of the full one.
#pragma once
#include <torch/torch.h>

#include "forma/parallel/device_mesh.h"

namespace forma::parallel {

// Mean over the targets that are not ignore_index, as torch's cross_entropy (HF's loss): logits
// [..., v] (any float type, computed in fp32), targets [...] int64 ids in [0, vocab_size). The
// ranks' widths v may differ (a padded vocabulary); together they must cover the vocabulary.
torch::Tensor vocab_parallel_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                           const GroupPtr& group, int64_t vocab_start, int64_t vocab_size,
                                           int64_t ignore_index = -100);

// The full logits [..., vocab_size] from every rank's consecutive slice (widths may differ by the
// padding: each rank's slice is ceil(vocab_size / group size) wide but for the last ones' tails).
// Differentiable (the backward keeps this rank's slice).
torch::Tensor gather_vocab_logits(const torch::Tensor& logits, const GroupPtr& group, int64_t vocab_size);

}  // namespace forma::parallel
