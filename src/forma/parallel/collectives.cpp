#include "forma/parallel/collectives.h"

#include "forma/core/error.h"

namespace forma::parallel {

void all_reduce_sum(const GroupPtr& group, torch::Tensor& tensor) {
  if (group->getSize() == 1) return;
  std::vector<at::Tensor> list{tensor};
  group->allreduce(list)->wait();
}

void all_reduce_mean(const GroupPtr& group, torch::Tensor& tensor) {
  if (group->getSize() == 1) return;
  all_reduce_sum(group, tensor);
  tensor.div_(group->getSize());
}

void all_reduce_max(const GroupPtr& group, torch::Tensor& tensor) {
  if (group->getSize() == 1) return;
  std::vector<at::Tensor> list{tensor};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::MAX;
  group->allreduce(list, opts)->wait();
}

double all_reduce_sum(const GroupPtr& group, double value) {
  if (group->getSize() == 1) return value;
  auto t = torch::tensor({value}, torch::kFloat64);
  all_reduce_sum(group, t);
  return t.item<double>();
}

torch::Tensor all_gather_cat(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim) {
  int n = group->getSize();
  if (n == 1) return tensor;
  auto input = tensor.contiguous();
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < n; ++r) outputs[0].push_back(torch::empty_like(input));
  std::vector<at::Tensor> inputs{input};
  group->allgather(outputs, inputs)->wait();
  return torch::cat(outputs[0], dim);
}

torch::Tensor gather_cat(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim, int root) {
  int n = group->getSize();
  if (n == 1) return tensor;
  auto input = tensor.contiguous();
  // Gloo wants one output list on the root and none elsewhere.
  std::vector<std::vector<at::Tensor>> outputs;
  if (group->getRank() == root) {
    outputs.emplace_back();
    for (int r = 0; r < n; ++r) outputs[0].push_back(torch::empty_like(input));
  }
  std::vector<at::Tensor> inputs{input};
  c10d::GatherOptions opts;
  opts.rootRank = root;
  group->gather(outputs, inputs, opts)->wait();
  return group->getRank() == root ? torch::cat(outputs[0], dim) : torch::Tensor();
}

torch::Tensor reduce_scatter_sum(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim) {
  int n = group->getSize();
  if (n == 1) return tensor;
  int64_t full = tensor.size(dim);
  check(full % n == 0, "reduce_scatter: size {} along dim {} is not divisible by the group size {}", full, dim, n);
  // Gloo (LibTorch 1.13) has no reduce_scatter: all-reduce, then keep this rank's slice. Twice the
  // traffic of a true reduce-scatter; NCCL builds can use the native one later.
  auto sum = tensor.contiguous().clone();
  all_reduce_sum(group, sum);
  return sum.narrow(dim, group->getRank() * (full / n), full / n).contiguous();
}

void broadcast(const GroupPtr& group, torch::Tensor& tensor, int root) {
  if (group->getSize() == 1) return;
  std::vector<at::Tensor> list{tensor};
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  group->broadcast(list, opts)->wait();
}

void barrier(const GroupPtr& group) {
  if (group->getSize() == 1) return;
  group->barrier()->wait();
}

}  // namespace forma::parallel
