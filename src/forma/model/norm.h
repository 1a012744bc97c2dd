// RMSNorm (weight * x / sqrt(mean(x^2) + eps), computed in fp32 as HF does) or LayerNorm
// (weight and bias), with HF's parameter names: "weight" and, for LayerNorm, "bias".
#pragma once
#include <torch/torch.h>

#include "forma/model/architecture.h"

namespace forma {

class NormImpl : public torch::nn::Module {
 public:
  NormImpl(NormKind kind, int64_t size, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  void reset_to_identity();  // weight 1, bias 0 (HF init)

  torch::Tensor weight, bias;

 private:
  NormKind kind_;
  double eps_;
};
TORCH_MODULE(Norm);

}  // namespace forma
