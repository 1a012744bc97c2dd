// Calling a child module by name, so that tensor parallelism (or LoRA) can swap a layer's Linear or
// Embedding for another module with Module::replace_module(name, ...) and the model still works:
// forward never holds on to a child by a typed member, it looks the child up by its name.
#pragma once
#include <torch/torch.h>

#include <string>

namespace forma {

// A replacement for a Linear/Embedding: any module mapping one tensor to one tensor.
class UnaryModule : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& input) = 0;
};

// Runs parent's child `name` (a torch::nn::Linear, torch::nn::Embedding or UnaryModule) on `input`.
torch::Tensor call_child(torch::nn::Module& parent, const std::string& name, const torch::Tensor& input);

// The parameter called "weight" of parent's child `name` (e.g. the embedding, for a tied lm_head).
torch::Tensor child_weight(torch::nn::Module& parent, const std::string& name);

}  // namespace forma
