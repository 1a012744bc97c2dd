#include "forma/model/norm.h"

namespace forma {

NormImpl::NormImpl(NormKind kind, int64_t size, double eps, bool weight_offset)
    : kind_(kind), eps_(eps), weight_offset_(weight_offset) {
  weight = register_parameter("weight", weight_offset ? torch::zeros({size}) : torch::ones({size}));
  if (kind == NormKind::LayerNorm) bias = register_parameter("bias", torch::zeros({size}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (kind_ == NormKind::LayerNorm) {
    return torch::layer_norm(x, {x.size(-1)}, weight_offset_ ? weight + 1.0 : weight, bias, eps_);
  }
  torch::Tensor x32 = x.to(torch::kFloat);
  torch::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  torch::Tensor normed = x32 * torch::rsqrt(variance + eps_);
  // Gemma multiplies in fp32 and casts after (HF GemmaRMSNorm); Llama casts, then multiplies.
  if (weight_offset_) return (normed * (1.0 + weight.to(torch::kFloat))).to(x.scalar_type());
  return weight * normed.to(x.scalar_type());
}

void NormImpl::reset_to_identity() {
  torch::NoGradGuard no_grad;
  weight.fill_(weight_offset_ ? 0.0 : 1.0);
  if (bias.defined()) bias.zero_();
}

}  // namespace forma
