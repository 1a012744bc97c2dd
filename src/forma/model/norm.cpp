#include "forma/model/norm.h"

namespace forma {

NormImpl::NormImpl(NormKind kind, int64_t size, double eps, bool weight_offset, bool with_bias, bool affine)
    : kind_(kind), eps_(eps), weight_offset_(weight_offset) {
  if (!affine) return;
  weight = register_parameter("weight", weight_offset ? torch::zeros({size}) : torch::ones({size}));
  if (kind == NormKind::LayerNorm && with_bias) bias = register_parameter("bias", torch::zeros({size}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (!weight.defined()) {  // OLMo: no parameters; fp32 and back, as HF's OlmoLayerNorm
    torch::Tensor x32 = x.to(torch::kFloat);
    torch::Tensor normed = kind_ == NormKind::LayerNorm
                               ? torch::layer_norm(x32, {x.size(-1)}, {}, {}, eps_)
                               : x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
    return normed.to(x.scalar_type());
  }
  if (kind_ == NormKind::LayerNorm) {
    return torch::layer_norm(x, {x.size(-1)}, weight_offset_ ? weight + 1.0 : weight, bias, eps_);
  }
  torch::Tensor x32 = x.to(torch::kFloat);
  torch::Tensor variance = sum_across ? sum_across(x32.pow(2).sum(-1, /*keepdim=*/true)) / static_cast<double>(full_size)
                                      : x32.pow(2).mean(-1, /*keepdim=*/true);
  torch::Tensor normed = x32 * torch::rsqrt(variance + eps_);
  // Gemma multiplies in fp32 and casts after (HF GemmaRMSNorm); Llama casts, then multiplies.
  if (weight_offset_) return (normed * (1.0 + weight.to(torch::kFloat))).to(x.scalar_type());
  return weight * normed.to(x.scalar_type());
}

Norm hidden_norm(const ModelConfig& c, const Architecture& arch) {
  return Norm(arch.norm, c.hidden_size, c.norm_eps, c.norm_weight_offset, /*with_bias=*/c.norm_bias,
              /*affine=*/!c.norm_without_parameters);
}

HeadNormsImpl::HeadNormsImpl(int64_t heads, int64_t dim, double eps) : eps_(eps) {
  auto list = register_module("norms", torch::nn::ModuleList());
  for (int64_t h = 0; h < heads; ++h) {
    norms_.push_back(Norm(NormKind::LayerNorm, dim, eps, /*weight_offset=*/false, /*with_bias=*/false));
    list->push_back(norms_.back());
  }
}

torch::Tensor HeadNormsImpl::forward(const torch::Tensor& x) {
  const int64_t heads = x.size(1), dim = x.size(-1);
  // Every norm takes part (the others with a zero gradient): under tensor parallelism each rank's
  // gradients are summed over the ranks, which needs a defined gradient on every one.
  std::vector<torch::Tensor> weights;
  for (const Norm& norm : norms_) weights.push_back(norm->weight);
  torch::Tensor weight = torch::stack(weights).narrow(0, head_offset, heads).view({1, heads, 1, dim});
  return torch::layer_norm(x, {dim}, {}, {}, eps_) * weight;
}

void NormImpl::reset_to_identity() {
  torch::NoGradGuard no_grad;
  if (!weight.defined()) return;
  weight.fill_(weight_offset_ ? 0.0 : 1.0);
  if (bias.defined()) bias.zero_();
}

}  // namespace forma
