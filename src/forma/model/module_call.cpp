#include "forma/model/module_call.h"

#include "forma/core/error.h"
#include "forma/kernels/gemv.h"

namespace forma {

namespace {

std::shared_ptr<torch::nn::Module> find_child(torch::nn::Module& parent, const std::string& name) {
  auto children = parent.named_children();
  const auto* found = children.find(name);
  check(found != nullptr, "module {} has no child '{}'", parent.name(), name);
  return *found;
}

}  // namespace

torch::Tensor call_child(torch::nn::Module& parent, const std::string& name, const torch::Tensor& input) {
  auto child = find_child(parent, name);
  if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(child.get())) {
    return kernels::linear(input, linear->weight, linear->bias);
  }
  if (auto* embedding = dynamic_cast<torch::nn::EmbeddingImpl*>(child.get())) {
    return embedding->forward(input);
  }
  if (auto* unary = dynamic_cast<UnaryModule*>(child.get())) return unary->forward(input);
  fail("child '{}' of {} is a {}, which forma cannot call with one tensor", name, parent.name(),
       child->name());
}

torch::Tensor child_weight(torch::nn::Module& parent, const std::string& name) {
  auto params = find_child(parent, name)->named_parameters(/*recurse=*/false);
  const auto* weight = params.find("weight");
  check(weight != nullptr, "child '{}' of {} has no parameter 'weight'", name, parent.name());
  return *weight;
}

}  // namespace forma
