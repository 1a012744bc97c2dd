#include "forma/parallel/tp_regions.h"

#include "forma/core/error.h"
#include "forma/parallel/collectives.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::parallel::tp_regions_detail {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// autograd's saved_data holds IValues, which cannot hold a ProcessGroup without TorchScript's class
// registry: the group travels as its address (it outlives the graph, see the header).
int64_t address_of(const GroupPtr& group) { return reinterpret_cast<int64_t>(group.get()); }

GroupPtr group_at(int64_t address) {
  return GroupPtr::unsafe_reclaim_from_nonowning(reinterpret_cast<c10d::Backend*>(address));
}

GroupPtr saved_group(AutogradContext* ctx) { return group_at(ctx->saved_data["group"].toInt()); }

int64_t normalized_dim(const torch::Tensor& x, int64_t dim) {
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  check(d >= 0 && d < x.dim(), "tensor parallel: dimension {} of a {}-dimensional tensor", dim, x.dim());
  return d;
}

torch::Tensor my_slice(const GroupPtr& group, const torch::Tensor& x, int64_t dim) {
  const int64_t n = group->getSize();
  check(x.size(dim) % n == 0, "sequence parallel: size {} along dimension {} is not divisible by tensor_parallel={}",
        x.size(dim), dim, n);
  const int64_t len = x.size(dim) / n;
  return x.narrow(dim, group->getRank() * len, len).contiguous();
}

torch::Tensor summed(const GroupPtr& group, const torch::Tensor& x) {
  torch::Tensor sum = x.clone(at::MemoryFormat::Contiguous);
  all_reduce_sum(group, sum);
  return sum;
}

struct CopyToRegion : public torch::autograd::Function<CopyToRegion> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {summed(saved_group(ctx), grads[0]), torch::Tensor()};
  }
};

struct ReduceFromRegion : public torch::autograd::Function<ReduceFromRegion> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x, int64_t group) {
    return summed(group_at(group), x);
  }
  static variable_list backward(AutogradContext*, variable_list grads) { return {grads[0], torch::Tensor()}; }
};

struct SumAcrossRegion : public torch::autograd::Function<SumAcrossRegion> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return summed(group_at(group), x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {summed(saved_group(ctx), grads[0]), torch::Tensor()};
  }
};

struct GatherRegion : public torch::autograd::Function<GatherRegion> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group, int64_t dim,
                               bool grad_is_partial) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["partial"] = grad_is_partial;
    return all_gather_cat(group_at(group), x, dim);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    GroupPtr group = saved_group(ctx);
    const int64_t dim = ctx->saved_data["dim"].toInt();
    torch::Tensor grad = ctx->saved_data["partial"].toBool() ? reduce_scatter_sum(group, grads[0], dim)
                                                             : my_slice(group, grads[0], dim);
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

struct ReduceScatterRegion : public torch::autograd::Function<ReduceScatterRegion> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group, int64_t dim) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["dim"] = dim;
    GroupPtr g = group_at(group);
    check(x.size(dim) % g->getSize() == 0,
          "sequence parallel: sequence length {} is not divisible by tensor_parallel={}", x.size(dim), g->getSize());
    return reduce_scatter_sum(g, x, dim);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    torch::Tensor grad = all_gather_cat(saved_group(ctx), grads[0], ctx->saved_data["dim"].toInt());
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

struct ScatterRegion : public torch::autograd::Function<ScatterRegion> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group, int64_t dim) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["dim"] = dim;
    return my_slice(group_at(group), x, dim);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    torch::Tensor grad = all_gather_cat(saved_group(ctx), grads[0], ctx->saved_data["dim"].toInt());
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace forma::parallel::tp_regions_detail

namespace forma::parallel {

namespace detail = tp_regions_detail;

torch::Tensor copy_to_tp_region(const torch::Tensor& x, const GroupPtr& group) {
  if (group->getSize() == 1) return x;
  return detail::CopyToRegion::apply(x, detail::address_of(group));
}

torch::Tensor reduce_from_tp_region(const torch::Tensor& x, const GroupPtr& group) {
  if (group->getSize() == 1) return x;
  return detail::ReduceFromRegion::apply(x, detail::address_of(group));
}

torch::Tensor sum_across_tp_region(const torch::Tensor& x, const GroupPtr& group) {
  if (group->getSize() == 1) return x;
  return detail::SumAcrossRegion::apply(x, detail::address_of(group));
}

torch::Tensor gather_from_sequence_region(const torch::Tensor& x, const GroupPtr& group, int64_t dim,
                                          GatheredGrad grad) {
  if (group->getSize() == 1) return x;
  return detail::GatherRegion::apply(x, detail::address_of(group), detail::normalized_dim(x, dim),
                                     grad == GatheredGrad::Partial);
}

torch::Tensor reduce_scatter_to_sequence_region(const torch::Tensor& x, const GroupPtr& group, int64_t dim) {
  if (group->getSize() == 1) return x;
  return detail::ReduceScatterRegion::apply(x, detail::address_of(group), detail::normalized_dim(x, dim));
}

torch::Tensor scatter_to_sequence_region(const torch::Tensor& x, const GroupPtr& group, int64_t dim) {
  if (group->getSize() == 1) return x;
  return detail::ScatterRegion::apply(x, detail::address_of(group), detail::normalized_dim(x, dim));
}

}  // namespace forma::parallel
