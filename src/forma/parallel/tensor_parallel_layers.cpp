#include "forma/parallel/tensor_parallel_layers.h"

#include "forma/core/error.h"
#include "forma/parallel/tp_regions.h"

namespace forma::parallel {

// The sequence dimension of forma's activations: [B, T, C], and [T, C] for position embeddings.
constexpr int64_t kSequenceDim = -2;

ColumnInput::ColumnInput(GroupPtr group, bool sequence_parallel)
    : group_(std::move(group)), sequence_parallel_(sequence_parallel) {}

std::shared_ptr<ColumnInput> ColumnInput::already_entered(GroupPtr group) {
  auto input = std::make_shared<ColumnInput>(std::move(group), false);
  input->already_entered_ = true;
  return input;
}

torch::Tensor ColumnInput::enter(const torch::Tensor& x) {
  if (group_->getSize() == 1 || already_entered_) return x;
  if (last_input_ && last_output_) {
    auto input = last_input_->lock();
    auto output = last_output_->lock();
    if (input && output && input.get() == x.unsafeGetTensorImpl() && x._version() == last_version_) {
      return torch::Tensor(output);
    }
  }
  torch::Tensor entered = sequence_parallel_ ? gather_from_sequence_region(x, group_, kSequenceDim)
                                             : copy_to_tp_region(x, group_);
  last_input_ = WeakTensor(x.getIntrusivePtr());
  last_output_ = WeakTensor(entered.getIntrusivePtr());
  last_version_ = x._version();
  return entered;
}

ColumnParallelLinearImpl::ColumnParallelLinearImpl(torch::Tensor weight, torch::Tensor bias,
                                                   std::shared_ptr<ColumnInput> input, int64_t valid_outputs,
                                                   bool register_weight)
    : input_(std::move(input)), valid_outputs_(valid_outputs < 0 ? weight.size(0) : valid_outputs) {
  weight_ = register_weight ? register_parameter("weight", weight) : weight;
  if (bias.defined()) bias_ = register_parameter("bias", bias);
}

torch::Tensor ColumnParallelLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor w = valid_outputs_ == weight_.size(0) ? weight_ : weight_.narrow(0, 0, valid_outputs_);
  torch::Tensor b = bias_.defined() && valid_outputs_ != bias_.size(0) ? bias_.narrow(0, 0, valid_outputs_) : bias_;
  return torch::linear(input_->enter(x), w, b);
}

RowParallelLinearImpl::RowParallelLinearImpl(torch::Tensor weight, torch::Tensor bias, GroupPtr group,
                                             bool sequence_parallel)
    : group_(std::move(group)), sequence_parallel_(sequence_parallel) {
  weight_ = register_parameter("weight", weight);
  if (bias.defined()) bias_ = register_parameter("bias", bias);
}

torch::Tensor RowParallelLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor partial = torch::linear(x, weight_);
  torch::Tensor sum = sequence_parallel_ ? reduce_scatter_to_sequence_region(partial, group_, kSequenceDim)
                                         : reduce_from_tp_region(partial, group_);
  return bias_.defined() ? sum + bias_ : sum;
}

VocabParallelEmbeddingImpl::VocabParallelEmbeddingImpl(torch::Tensor weight, int64_t vocab_start, int64_t valid_rows,
                                                       int64_t vocab_size, GroupPtr group, bool sequence_parallel)
    : vocab_start_(vocab_start),
      valid_rows_(valid_rows),
      vocab_size_(vocab_size),
      group_(std::move(group)),
      sequence_parallel_(sequence_parallel) {
  weight_ = register_parameter("weight", weight);
}

torch::Tensor VocabParallelEmbeddingImpl::forward(const torch::Tensor& ids) {
  if (ids.numel() > 0) {
    // A single-process embedding fails on such ids; here they would silently embed to zeros.
    const int64_t low = ids.min().item<int64_t>(), high = ids.max().item<int64_t>();
    check(low >= 0 && high < vocab_size_, "token id {} is outside the vocabulary of {} ids",
          low < 0 ? low : high, vocab_size_);
  }
  if (sequence_parallel_ && group_->getSize() > 1) {
    check(ids.dim() >= 1 && ids.size(-1) % group_->getSize() == 0,
          "sequence parallel: the sequence length {} is not divisible by tensor_parallel={}",
          ids.dim() >= 1 ? ids.size(-1) : 0, group_->getSize());
  }
  torch::Tensor local = ids - vocab_start_;
  torch::Tensor elsewhere = local.lt(0).logical_or(local.ge(valid_rows_));
  torch::Tensor rows = torch::embedding(weight_, local.masked_fill(elsewhere, 0));
  rows = rows.masked_fill(elsewhere.unsqueeze(-1), 0.0);
  return sequence_parallel_ ? reduce_scatter_to_sequence_region(rows, group_, kSequenceDim)
                            : reduce_from_tp_region(rows, group_);
}

SequenceSlicedEmbeddingImpl::SequenceSlicedEmbeddingImpl(torch::Tensor weight, GroupPtr group)
    : group_(std::move(group)) {
  weight_ = register_parameter("weight", weight);
}

torch::Tensor SequenceSlicedEmbeddingImpl::forward(const torch::Tensor& positions) {
  // Slicing the ids (not the looked-up rows) needs no communication; the table's gradient then
  // covers this rank's positions only (a partial sum, see sync_tensor_parallel_grads).
  const int64_t n = group_->getSize();
  check(positions.size(0) % n == 0, "sequence parallel: the sequence length {} is not divisible by tensor_parallel={}",
        positions.size(0), n);
  const int64_t length = positions.size(0) / n;
  return torch::embedding(weight_, positions.narrow(0, group_->getRank() * length, length));
}

SequenceParallelMoeImpl::SequenceParallelMoeImpl(std::shared_ptr<MoeBlock> inner, GroupPtr group)
    : inner_(std::move(inner)), group_(std::move(group)) {
  for (const auto& child : inner_->named_children()) register_module(child.key(), child.value());
}

std::pair<torch::Tensor, torch::Tensor> SequenceParallelMoeImpl::forward(const torch::Tensor& x) {
  // After the block every rank holds the whole output and so the whole gradient of it: the gather's
  // backward slices instead of summing.
  torch::Tensor tokens = gather_from_sequence_region(x, group_, kSequenceDim, GatheredGrad::Full);
  auto [out, router_logits] = inner_->forward(tokens);
  return {scatter_to_sequence_region(out, group_, kSequenceDim), router_logits};
}

}  // namespace forma::parallel
