// Megatron-LM's tensor-parallel layers, as replacements for a model's Linear and Embedding children
// (module_call.h: the model calls its children by name, so replace_module swaps them in). Each is
// built from its shard of the full weight (tensor_parallel_model.h cuts the shards). With a group of
// one rank they compute exactly what the layers they replace compute.
//
// sequence_parallel: activations outside the column/row pairs are [B, T/tp, C] (this rank's slice
// of the sequence); column-parallel inputs are all-gathered, row-parallel outputs reduce-scattered.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <optional>

#include "forma/model/mlp.h"
#include "forma/model/module_call.h"
#include "forma/parallel/device_mesh.h"

namespace forma::parallel {

// Where an activation enters the column-parallel layers that read it: a copy (identity forward,
// all-reduce of the gradient) or, with sequence parallel, an all-gather (reduce-scatter of the
// gradient). Sibling layers reading one input (q/k/v, gate/up, an expert's w1/w3) share one
// ColumnInput, so the input enters once and backward sums their gradients locally before the one
// collective, instead of one collective per projection.
class ColumnInput {
 public:
  ColumnInput(GroupPtr group, bool sequence_parallel);
  // An input that is already whole and the same on every rank, computed from an entered one (MLA's
  // latents): it enters as itself, and the gradient is summed where that first input entered.
  static std::shared_ptr<ColumnInput> already_entered(GroupPtr group);
  torch::Tensor enter(const torch::Tensor& x);
  const GroupPtr& group() const { return group_; }

 private:
  using WeakTensor = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  GroupPtr group_;
  bool sequence_parallel_;
  bool already_entered_ = false;
  // The last input and what entering made of it. Weak: when the consumers no longer hold the
  // entered tensor (it is freed after backward, or never kept under no_grad) the next call
  // enters again, so this cache never keeps activations alive.
  std::optional<WeakTensor> last_input_, last_output_;
  int64_t last_version_ = -1;
};

// y = x A^T + b with A's rows (output features) split: y holds this rank's output columns.
// `valid_outputs` < rows uses only the first rows of the weight (the padding of a vocabulary that
// the tp size does not divide). With register_weight false the weight belongs to another module
// (an lm_head tied to the vocab-parallel embedding) and is not a parameter of this one.
class ColumnParallelLinearImpl : public UnaryModule {
 public:
  ColumnParallelLinearImpl(torch::Tensor weight, torch::Tensor bias, std::shared_ptr<ColumnInput> input,
                           int64_t valid_outputs = -1, bool register_weight = true);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  torch::Tensor weight_, bias_;
  std::shared_ptr<ColumnInput> input_;
  int64_t valid_outputs_;
};

// y = x A^T + b with A's columns (input features) split; x is this rank's slice of the features
// (a column-parallel output). The partial products are summed across the group (all-reduce, or
// reduce-scatter along the sequence with sequence parallel); the bias, whole on every rank, is
// added once after the sum.
class RowParallelLinearImpl : public UnaryModule {
 public:
  RowParallelLinearImpl(torch::Tensor weight, torch::Tensor bias, GroupPtr group, bool sequence_parallel);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  torch::Tensor weight_, bias_;
  GroupPtr group_;
  bool sequence_parallel_;
};

// An embedding whose rows (the vocabulary) are split: rank r holds ids [start, start + valid) in a
// weight of `rows` >= valid rows (padding). Ids elsewhere look up zeros; the sum over the group
// (all-reduce, or reduce-scatter along the sequence) completes every row.
class VocabParallelEmbeddingImpl : public UnaryModule {
 public:
  VocabParallelEmbeddingImpl(torch::Tensor weight, int64_t vocab_start, int64_t valid_rows, int64_t vocab_size,
                             GroupPtr group, bool sequence_parallel);
  torch::Tensor forward(const torch::Tensor& ids) override;
  const torch::Tensor& weight() const { return weight_; }

 private:
  torch::Tensor weight_;
  int64_t vocab_start_, valid_rows_, vocab_size_;
  GroupPtr group_;
  bool sequence_parallel_;
};

// Sequence parallel's learned position embedding (gpt2): the whole table on every rank, positions
// [T] -> this rank's slice of the embeddings [T/tp, C].
class SequenceSlicedEmbeddingImpl : public UnaryModule {
 public:
  SequenceSlicedEmbeddingImpl(torch::Tensor weight, GroupPtr group);
  torch::Tensor forward(const torch::Tensor& positions) override;

 private:
  torch::Tensor weight_;
  GroupPtr group_;
};

// Sequence parallel around a mixture-of-experts block whose experts are tensor-parallel: the
// tokens are all-gathered (every rank must route and run the same tokens through its expert
// shards), the block runs as without sequence parallel, and each rank keeps its slice of the
// output. The router then sees every token on every rank, so its gradient is whole everywhere.
// The wrapped block's children are registered under their own names: parameter names stay HF's.
class SequenceParallelMoeImpl : public MoeBlock {
 public:
  SequenceParallelMoeImpl(std::shared_ptr<MoeBlock> inner, GroupPtr group);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) override;

 private:
  std::shared_ptr<MoeBlock> inner_;
  GroupPtr group_;
};

}  // namespace forma::parallel
