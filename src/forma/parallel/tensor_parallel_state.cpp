// The tensor-parallel model's state: shards and full tensors, the loss, gradients.
#include <cmath>

#include "forma/core/error.h"
#include "forma/parallel/collectives.h"
#include "forma/parallel/tensor_parallel_model.h"
#include "forma/parallel/vocab_parallel_loss.h"

namespace forma::parallel {

torch::Tensor tensor_parallel_loss(const TensorParallelPlan& plan, const torch::Tensor& logits,
                                   const torch::Tensor& targets) {
  return vocab_parallel_cross_entropy(logits, targets, plan.group, plan.vocab_start, plan.config.vocab_size);
}

torch::Tensor gather_logits(const TensorParallelPlan& plan, const torch::Tensor& logits) {
  return gather_vocab_logits(logits, plan.group, plan.config.vocab_size);
}

torch::Tensor shard_tensor(const torch::Tensor& full, const ShardSpec& spec, int tp_size, int tp_rank) {
  if (spec.dim < 0) return full.clone();
  check(spec.dim < full.dim() && full.size(spec.dim) == spec.full_size,
        "tensor parallel: a tensor of shape {} has no size {} along dimension {} to split",
        fmt::format("{}", fmt::join(full.sizes(), "x")), spec.full_size, spec.dim);
  const PieceRange range = piece_range(spec, tp_size, tp_rank);
  torch::Tensor piece = full.narrow(spec.dim, range.start, range.length);
  if (range.padding > 0) {
    std::vector<int64_t> pad_shape = full.sizes().vec();
    pad_shape[spec.dim] = range.padding;
    piece = torch::cat({piece, torch::zeros(pad_shape, full.options())}, spec.dim);
  }
  return piece.contiguous().clone();
}

torch::Tensor gather_shards(const torch::Tensor& local, const ShardSpec& spec, const GroupPtr& group) {
  if (spec.dim < 0) return local.clone();
  torch::Tensor all = all_gather_cat(group, local, spec.dim);  // one piece per rank, in rank order
  if (spec.copies > 1) {
    std::vector<torch::Tensor> distinct;
    auto per_rank = all.chunk(group->getSize(), spec.dim);
    for (size_t r = 0; r < per_rank.size(); r += static_cast<size_t>(spec.copies)) distinct.push_back(per_rank[r]);
    all = torch::cat(distinct, spec.dim);
  }
  return all.narrow(spec.dim, 0, spec.full_size).contiguous();
}

StateDict gather_full_parameters(CausalLM& model, const TensorParallelPlan& plan, bool gradients) {
  torch::NoGradGuard no_grad;
  StateDict full;
  // named_parameters() has the same order on every rank: the collectives pair up.
  for (const auto& p : model->named_parameters()) {
    torch::Tensor local = p.value().detach();
    if (gradients) local = p.value().grad().defined() ? p.value().grad() : torch::zeros_like(local);
    full[p.key()] = gather_shards(local, plan.shards.at(p.key()), plan.group);
  }
  return full;
}

StateDict gather_trainable_parameters(CausalLM& model, const TensorParallelPlan& plan) {
  torch::NoGradGuard no_grad;
  StateDict full;
  for (const auto& p : model->named_parameters()) {  // the same order and flags on every rank
    if (p.value().requires_grad()) full[p.key()] = gather_shards(p.value().detach(), plan.shards.at(p.key()), plan.group);
  }
  return full;
}

StateDict gather_hf_state_dict(CausalLM& model, const TensorParallelPlan& plan) {
  return to_hf_names(gather_full_parameters(model, plan), plan.config);
}

void load_full_parameters(CausalLM& model, const TensorParallelPlan& plan, const StateDict& full) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    auto it = full.find(p.key());
    check(it != full.end(), "tensor parallel: the full state has no tensor '{}'", p.key());
    torch::Tensor piece = shard_tensor(it->second, plan.shards.at(p.key()), plan.size, plan.rank);
    check(piece.sizes() == p.value().sizes(), "tensor parallel: tensor '{}' of shape {} does not fit the model",
          p.key(), fmt::format("{}", fmt::join(it->second.sizes(), "x")));
    p.value().copy_(piece);
  }
}

void sync_tensor_parallel_grads(CausalLM& model, const TensorParallelPlan& plan) {
  if (plan.size == 1) return;
  torch::NoGradGuard no_grad;
  // One buffer with a slot per distinct piece of each partial parameter: whole ones have one slot
  // (summed over all ranks), replicated key-value heads tp / copies slots, each summed over the
  // ranks holding that piece only. Every rank lays the buffer out the same way.
  struct Part {
    torch::Tensor param;
    int64_t offset, slots, numel, slot;
  };
  std::vector<Part> parts;
  int64_t total = 0;
  for (const auto& p : model->named_parameters()) {
    const ShardSpec& spec = plan.shards.at(p.key());
    if (!spec.grad_is_partial) continue;
    Part part{p.value(), total, plan.size / spec.copies, p.value().numel(), plan.rank / spec.copies};
    total += part.slots * part.numel;
    parts.push_back(part);
  }
  if (parts.empty()) return;
  torch::Tensor buffer = torch::zeros({total}, parts.front().param.options().dtype(torch::kFloat));
  for (const auto& part : parts) {
    const torch::Tensor& grad = part.param.grad();
    if (grad.defined()) buffer.narrow(0, part.offset + part.slot * part.numel, part.numel).copy_(grad.reshape(-1));
  }
  all_reduce_sum(plan.group, buffer);
  for (auto& part : parts) {
    torch::Tensor grad = part.param.grad();
    if (!grad.defined()) continue;
    grad.copy_(buffer.narrow(0, part.offset + part.slot * part.numel, part.numel).view_as(grad));
  }
}

double tensor_parallel_grad_norm(CausalLM& model, const TensorParallelPlan& plan) {
  torch::NoGradGuard no_grad;
  // Each rank adds its pieces' squares divided by how many ranks hold the same piece, so that the
  // sum over the group counts every element of the full model once.
  torch::Tensor sum = torch::zeros({1}, model->parameters().front().options().dtype(torch::kDouble));
  for (const auto& p : model->named_parameters()) {
    const torch::Tensor& grad = p.value().grad();
    if (!grad.defined()) continue;
    sum += grad.to(torch::kDouble).pow(2).sum() / static_cast<double>(plan.shards.at(p.key()).copies);
  }
  all_reduce_sum(plan.group, sum);
  return std::sqrt(sum.item<double>());
}

double clip_tensor_parallel_grad_norm(CausalLM& model, const TensorParallelPlan& plan, double max_norm) {
  const double norm = tensor_parallel_grad_norm(model, plan);
  const double coef = max_norm / (norm + 1e-6);
  if (max_norm > 0 && coef < 1) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      if (p.grad().defined()) p.grad().mul_(coef);
    }
  }
  return norm;
}

}  // namespace forma::parallel
