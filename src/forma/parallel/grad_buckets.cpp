#include "forma/parallel/grad_buckets.h"

#include "forma/core/error.h"
#include "forma/parallel/collectives.h"

namespace forma::parallel {

std::vector<GradBucket> plan_grad_buckets(const std::vector<train::NamedParameter>& params, int64_t bucket_bytes,
                                          int shards) {
  check(shards >= 1, "plan_grad_buckets: {} shards", shards);
  const int64_t bucket_elements = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  std::vector<GradBucket> buckets;
  auto close_last = [&] {
    auto& b = buckets.back();
    b.padded = (b.numel + shards - 1) / shards * shards;
  };
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& t = params[i].tensor;
    check(t.scalar_type() == torch::kFloat32 && t.is_contiguous(),
          "data parallel: parameter '{}' must be a contiguous fp32 tensor (it is {})", params[i].name,
          c10::toString(t.scalar_type()));
    if (buckets.empty() || (buckets.back().numel > 0 && buckets.back().numel + t.numel() > bucket_elements)) {
      if (!buckets.empty()) close_last();
      buckets.emplace_back();
    }
    auto& b = buckets.back();
    b.entries.push_back({i, b.numel, t.numel()});
    b.numel += t.numel();
  }
  if (!buckets.empty()) close_last();
  return buckets;
}

std::vector<bool> gradient_presence(const GroupPtr& group, const std::vector<train::NamedParameter>& params) {
  auto flags = torch::zeros({static_cast<int64_t>(params.size())}, torch::kInt32);
  auto* f = flags.data_ptr<int32_t>();
  for (size_t i = 0; i < params.size(); ++i) f[i] = params[i].tensor.grad().defined() ? 1 : 0;
  all_reduce_sum(group, flags);
  std::vector<bool> present(params.size());
  for (size_t i = 0; i < params.size(); ++i) present[i] = f[i] > 0;
  return present;
}

torch::Tensor take_bucket_gradients(const GradBucket& bucket, const std::vector<train::NamedParameter>& params) {
  auto flat = torch::empty({bucket.padded}, params.front().tensor.options().dtype(torch::kFloat32));
  if (bucket.padded > bucket.numel) flat.narrow(0, bucket.numel, bucket.padded - bucket.numel).zero_();
  for (const auto& e : bucket.entries) {
    auto slice = flat.narrow(0, e.offset, e.numel);
    auto& grad = params[e.param].tensor.mutable_grad();
    if (grad.defined()) {
      slice.copy_(grad.reshape({-1}));
      grad = torch::Tensor();
    } else {
      slice.zero_();
    }
  }
  return flat;
}

}  // namespace forma::parallel
