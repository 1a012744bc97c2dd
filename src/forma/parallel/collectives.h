// Collectives over one process group (Gloo or NCCL), in the shapes parallel layers want (concatenate
// along a dim, reduce and keep this rank's slice). Tensors may live anywhere: one that is not where
// the group's backend works (a CPU scalar under NCCL, which works on this process's current GPU) is
// staged there and the result copied back. A group of one rank returns its input: no communication.
#pragma once
#include "forma/parallel/device_mesh.h"

namespace forma::parallel {

// In place: every rank ends with the elementwise sum (or mean) over the group.
void all_reduce_sum(const GroupPtr& group, torch::Tensor& tensor);
void all_reduce_mean(const GroupPtr& group, torch::Tensor& tensor);
void all_reduce_max(const GroupPtr& group, torch::Tensor& tensor);
// A scalar summed over the group, in double precision.
double all_reduce_sum(const GroupPtr& group, double value);

// Concatenation of every rank's `tensor` along `dim`, in rank order. Shapes must agree.
torch::Tensor all_gather_cat(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim);

// On `root`: the concatenation of every rank's `tensor` along `dim`, in rank order; elsewhere an
// undefined tensor. Only the root holds the whole (a sharded optimizer state gathered for saving).
torch::Tensor gather_cat(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim, int root = 0);

// Sum over the group, then this rank's slice number `rank` of size(dim)/group size along `dim`.
torch::Tensor reduce_scatter_sum(const GroupPtr& group, const torch::Tensor& tensor, int64_t dim);

// In place: `tensor` takes root's value.
void broadcast(const GroupPtr& group, torch::Tensor& tensor, int root = 0);

void barrier(const GroupPtr& group);

// Point to point, for pipeline stages: `tensor` to group rank `to`; and into `tensor` (its shape and
// dtype must match what is sent) from group rank `from`. `tag` tells apart messages between the
// same two ranks.
void send(const GroupPtr& group, const torch::Tensor& tensor, int to, int tag = 0);
void recv(const GroupPtr& group, torch::Tensor& tensor, int from, int tag = 0);

// Where `group`'s collectives run: the current CUDA device for NCCL, else the CPU.
torch::Device group_device(const GroupPtr& group);

}  // namespace forma::parallel
