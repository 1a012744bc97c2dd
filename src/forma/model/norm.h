// RMSNorm (weight * x / sqrt(mean(x^2) + eps), computed in fp32 as HF does) or LayerNorm
// (weight and bias), with HF's parameter names: "weight" and, for LayerNorm, "bias". With
// weight_offset (ModelConfig::norm_weight_offset, Gemma) the scale is (1 + weight), applied in fp32
// before the cast back as HF's GemmaRMSNorm does, and the identity has weight 0.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "forma/model/architecture.h"

namespace forma {

class NormImpl : public torch::nn::Module {
 public:
  // weight_offset: scales by (1 + weight) (gemma); with_bias: LayerNorm only; affine false: no
  // parameters at all, computed in fp32 and cast back (HF OlmoLayerNorm).
  NormImpl(NormKind kind, int64_t size, double eps, bool weight_offset = false, bool with_bias = true,
           bool affine = true);
  torch::Tensor forward(const torch::Tensor& x);
  void reset_to_identity();  // weight 1 (0 with weight_offset), bias 0 (HF init)

  torch::Tensor weight, bias;  // undefined when the norm has no parameters

  // Tensor parallelism over a norm whose vector is split over the ranks (qk_norm_whole: each rank
  // holds its heads' part of q): an RMSNorm then takes the mean of x^2 as sum_across(the local
  // sums of squares) / full_size. Unset: the vector is whole here.
  std::function<torch::Tensor(const torch::Tensor&)> sum_across;
  int64_t full_size = 0;

 private:
  NormKind kind_;
  double eps_;
  bool weight_offset_;
};
TORCH_MODULE(Norm);

// A norm over hidden_size (input/post-attention layernorms, the final norm) as the config and
// architecture make it (kind, epsilon, 1 + weight, no parameters).
Norm hidden_norm(const ModelConfig& config, const Architecture& arch);

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
