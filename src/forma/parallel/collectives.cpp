#include "forma/parallel/collectives.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "forma/core/error.h"

namespace forma::parallel {

torch::Device group_device(const GroupPtr& group) {
  if (group->getBackendName() != "nccl") return torch::kCPU;
  return c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getDevice();
}

namespace {

// `tensor` where the group's backend works, contiguous (the same tensor when it already is).
torch::Tensor staged(const GroupPtr& group, const torch::Tensor& tensor) {
  return tensor.to(group_device(group)).contiguous();
}

// In place through a staged copy when `tensor` is elsewhere or not contiguous.
template <typename Collective>
void in_place(const GroupPtr& group, torch::Tensor& tensor, Collective collective) {
  torch::Tensor work = staged(group, tensor);
  std::vector<at::Tensor> list{work};
  collective(list)->wait();
  if (!work.is_same(tensor)) tensor.copy_(work);
}

}  // namespace

void all_reduce_sum(const GroupPtr& group, torch::Tensor& tensor) {
  if (group->getSize() == 1) return;
  in_place(group, tensor, [&](std::vector<at::Tensor>& list) { return group->allreduce(list); });
}

void all_reduce_mean(const GroupPtr& group, torch::Tensor& tensor) {
  if (group->getSize() == 1) return;
  all_reduce_sum(group, tensor);
  tensor.div_(group->getSize());
}

void all_reduce_max(const GroupPtr& group, torch::Tensor& tensor) {
  if (group->getSize() == 1) return;
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::MAX;
  in_place(group, tensor, [&](std::vector<at::Tensor>& list) { return group->allreduce(list, opts); });
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
  auto input = staged(group, tensor);
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < n; ++r) outputs[0].push_back(torch::empty_like(input));
  std::vector<at::Tensor> inputs{input};
  group->allgather(outputs, inputs)->wait();
  return torch::cat(outputs[0], dim).to(tensor.device());
}

torch::Tensor gather_cat(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim, int root) {
  int n = group->getSize();
  if (n == 1) return tensor;
  auto input = staged(group, tensor);
  // The backends want one output list on the root and none elsewhere.
  std::vector<std::vector<at::Tensor>> outputs;
  if (group->getRank() == root) {
    outputs.emplace_back();
    for (int r = 0; r < n; ++r) outputs[0].push_back(torch::empty_like(input));
  }
  std::vector<at::Tensor> inputs{input};
  c10d::GatherOptions opts;
  opts.rootRank = root;
  group->gather(outputs, inputs, opts)->wait();
  return group->getRank() == root ? torch::cat(outputs[0], dim).to(tensor.device()) : torch::Tensor();
}

torch::Tensor reduce_scatter_sum(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim) {
  int n = group->getSize();
  if (n == 1) return tensor;
  int64_t full = tensor.size(dim);
  check(full % n == 0, "reduce_scatter: size {} along dim {} is not divisible by the group size {}", full, dim, n);
  // The backends split the input along dim 0: bring `dim` to the front, and back afterwards.
  auto input = staged(group, tensor.movedim(dim, 0));
  auto shape = input.sizes().vec();
  shape[0] = full / n;
  auto output = torch::empty(shape, input.options());
  group->reduce_scatter_single(output, input)->wait();
  return output.movedim(0, dim).contiguous().to(tensor.device());
}

void broadcast(const GroupPtr& group, torch::Tensor& tensor, int root) {
  if (group->getSize() == 1) return;
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  in_place(group, tensor, [&](std::vector<at::Tensor>& list) { return group->broadcast(list, opts); });
}

void send(const GroupPtr& group, const torch::Tensor& tensor, int to, int tag) {
  std::vector<at::Tensor> list{staged(group, tensor)};
  group->send(list, to, tag)->wait();
}

void recv(const GroupPtr& group, torch::Tensor& tensor, int from, int tag) {
  in_place(group, tensor, [&](std::vector<at::Tensor>& list) { return group->recv(list, from, tag); });
}

void barrier(const GroupPtr& group) {
  if (group->getSize() == 1) return;
  group->barrier()->wait();
}

}  // namespace forma::parallel
