// The adapted linear layer: y = base(x) + (dropout(x) A^T B^T) * scaling, PEFT's lora.Linear. It
// replaces a model's nn::Linear child by name (model/module_call.h) and keeps the base layer's
// parameters under their old names ("weight", "bias": frozen), so the model's parameter names
// stay its Hugging Face names, plus "lora_A.weight" [r, in] and "lora_B.weight" [out, r].
#pragma once
#include <torch/torch.h>

#include <functional>

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

  // Tensor parallelism (parallel/tensor_parallel_model.cpp sets these on the layers it splits, the
  // tensors above then being this rank's pieces; unset, the layer is the one-process layer):
  // `enter` makes the input a column-parallel layer's region input (identity forward, all-reduced
  // gradient; or the sequence all-gather), `leave` sums a row-parallel layer's partial products
  // x_i W_i^T + s B A_i x_i over the group (all-reduce or reduce-scatter), the bias added after it.
  std::function<torch::Tensor(const torch::Tensor&)> enter, leave;
  // A row-parallel layer holds features [dropout_offset, + in) of dropout_features: its dropout mask
  // is that slice of a mask drawn for all of them, so the ranks' masks join into one (and every
  // rank's generator, seeded alike, draws the same full mask).
  int64_t dropout_features = 0, dropout_offset = 0;

 private:
  torch::Tensor dropped(const torch::Tensor& x);
};
TORCH_MODULE(LoraLinear);

}  // namespace forma::peft
