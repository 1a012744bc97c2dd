// RMSNorm (weight * x / sqrt(mean(x^2) + eps), computed in fp32 as HF does) or LayerNorm
// (weight and bias), with HF's parameter names: "weight" and, for LayerNorm, "bias".
#pragma once
#include <torch/torch.h>

#include "forma/model/architecture.h"

namespace forma {

class NormImpl : public torch::nn::Module {
 public:
  NormImpl(NormKind kind, int64_t size, double eps, bool with_bias = true);  // bias: LayerNorm only
  torch::Tensor forward(const torch::Tensor& x);
  void reset_to_identity();  // weight 1, bias 0 (HF init)

  torch::Tensor weight, bias;

 private:
  NormKind kind_;
  double eps_;
};
TORCH_MODULE(Norm);

// One LayerNorm without bias per head (HF's StableLmLayerNormPerHead, children norms.{h}) on
// x [B, H, T, D]. Under tensor parallelism every rank holds all the norms and applies those of
// its own heads, from head_offset on (the others get no gradient there).
class HeadNormsImpl : public torch::nn::Module {
 public:
  HeadNormsImpl(int64_t heads, int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t head_offset = 0;

 private:
  std::vector<Norm> norms_;
  double eps_;
};
TORCH_MODULE(HeadNorms);

}  // namespace forma
