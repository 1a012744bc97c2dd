// Communication at the borders of tensor-parallel regions (Megatron-LM's "mappings"), each a
// torch::autograd::Function whose backward is the adjoint of its forward, so that a model built
// from them differentiates to the same gradients as the single-process model. With a group of one
// rank every function returns its input: the layers using them are then ordinary layers.
//
// The group must outlive the autograd graphs built with it (the device mesh owns it).
// `dim` may be negative (counted from the end); forma's sequence dimension is -2 of [B, T, C].
#pragma once
#include <torch/torch.h>

#include "forma/parallel/device_mesh.h"

namespace forma::parallel {

// Identity forward; the gradient is all-reduced (summed) in backward. Where a replicated
// activation enters column-parallel layers, each of which contributes a partial input gradient.
torch::Tensor copy_to_tp_region(const torch::Tensor& x, const GroupPtr& group);

// All-reduce (sum) forward; identity backward. Where row-parallel partial sums leave the region.
torch::Tensor reduce_from_tp_region(const torch::Tensor& x, const GroupPtr& group);

// All-reduce (sum) forward and backward: a sum every rank goes on to use, of terms each rank
// holds some of (the sums of squares of a norm over a vector split over the ranks), so each
// term's gradient is the sum of every rank's gradient of the total.
torch::Tensor sum_across_tp_region(const torch::Tensor& x, const GroupPtr& group);

// What the gradient arriving at an all-gather's output is on each rank.
enum class GatheredGrad {
  Partial,  // a partial sum of the full gradient (column-parallel layers follow): reduce-scatter it
  Full,     // the full gradient, the same on every rank (replicated computation follows): slice it
};

// All-gather along `dim` (sequence parallel: [B, T/tp, C] -> [B, T, C]) forward; in backward the
// gradient is reduce-scattered or sliced, as `grad` says.
torch::Tensor gather_from_sequence_region(const torch::Tensor& x, const GroupPtr& group, int64_t dim,
                                          GatheredGrad grad = GatheredGrad::Partial);

// Reduce-scatter along `dim` forward (row-parallel partial sums -> this rank's sequence slice of
// their sum); all-gather backward.
torch::Tensor reduce_scatter_to_sequence_region(const torch::Tensor& x, const GroupPtr& group, int64_t dim);

// This rank's slice along `dim` forward (size(dim) must divide by the group size); all-gather
// backward. For activations every rank holds whole, e.g. learned position embeddings.
torch::Tensor scatter_to_sequence_region(const torch::Tensor& x, const GroupPtr& group, int64_t dim);

}  // namespace forma::parallel
