#include "forma/model/norm.h"

namespace forma {

NormImpl::NormImpl(NormKind kind, int64_t size, double eps) : kind_(kind), eps_(eps) {
  weight = register_parameter("weight", torch::ones({size}));
  if (kind == NormKind::LayerNorm) bias = register_parameter("bias", torch::zeros({size}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (kind_ == NormKind::LayerNorm) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps_);
  torch::Tensor x32 = x.to(torch::kFloat);
  torch::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x32 * torch::rsqrt(variance + eps_)).to(x.scalar_type());
}

void NormImpl::reset_to_identity() {
  torch::NoGradGuard no_grad;
  weight.fill_(1.0);
  if (bias.defined()) bias.zero_();
}

}  // namespace forma
