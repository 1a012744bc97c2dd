// The adapted linear layer: y = base(x) + (dropout(x) A^T B^T) * scaling, PEFT's lora.Linear. It
// replaces a model's nn::Linear child by name (model/module_call.h) and keeps the base layer's
// parameters under their old names ("weight", "bias": frozen), so the model's parameter names
// stay its Hugging Face names, plus "lora_A.weight" [r, in] and "lora_B.weight" [out, r].
#pragma once
#include <torch/torch.h>

#include "forma/model/module_call.h"

namespace forma::peft {

class LoraLinearImpl : public UnaryModule {
 public:
  // `weight` [out, in] and `bias` [out] (undefined: none) are the base layer's, taken over as they
  // are (frozen). A and B are created on the weight's device in fp32 whatever the base's dtype (as
  // PEFT's autocast_adapter_dtype does: a bf16 base trains fp32 adapters), initialised per `init`
  // ("default", "gaussian", "random": lora_config.h) from LibTorch's default generator.
  LoraLinearImpl(torch::Tensor weight, torch::Tensor bias, int64_t r, double scaling, double dropout,
                 const std::string& init);
  torch::Tensor forward(const torch::Tensor& x) override;

  // W + scaling * B A, in the weight's dtype (the merge is computed in fp32).
  torch::Tensor merged_weight() const;

  torch::Tensor weight, bias;
  torch::Tensor lora_A, lora_B;  // the weights of the children lora_A / lora_B
  int64_t r;
  double scaling, dropout;
};
TORCH_MODULE(LoraLinear);

}  // namespace forma::peft
