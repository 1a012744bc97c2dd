#include "forma/peft/lora_linear.h"

#include <cmath>

#include "forma/kernels/gemv.h"

namespace forma::peft {

LoraLinearImpl::LoraLinearImpl(torch::Tensor base_weight, torch::Tensor base_bias, int64_t rank, double scale,
                               double p, const std::string& init)
    : r(rank), scaling(scale), dropout(p) {
  weight = register_parameter("weight", base_weight.detach(), /*requires_grad=*/false);
  if (base_bias.defined()) bias = register_parameter("bias", base_bias.detach(), /*requires_grad=*/false);
  const int64_t out = base_weight.size(0), in = base_weight.size(1);
  auto a = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in, r).bias(false)));
  auto b = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out).bias(false)));
  // nn::Linear's constructor drew kaiming_uniform(a=sqrt(5)) for both, as torch.nn.Linear does:
  // PEFT's init_lora_weights=False keeps exactly that.
  torch::NoGradGuard no_grad;
  if (init == "gaussian") a->weight.normal_(0, 1.0 / static_cast<double>(r));
  if (init != "random") b->weight.zero_();
  a->to(base_weight.device());
  b->to(base_weight.device());
  lora_A = a->weight;
  lora_B = b->weight;
}

torch::Tensor LoraLinearImpl::dropped(const torch::Tensor& x) {
  if (!(dropout > 0 && is_training())) return x;
  if (dropout_features == 0) return torch::dropout(x, dropout, /*train=*/true);
  // torch::dropout's own math on the CPU (a bernoulli mask over the input's shape, scaled), drawn
  // for every feature of the layer; this rank keeps its slice.
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = dropout_features;
  torch::Tensor keep = torch::empty(shape, x.options()).bernoulli_(1 - dropout).div_(1 - dropout);
  return x * keep.narrow(-1, dropout_offset, x.size(-1));
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x_in) {
  const torch::Tensor x = enter ? enter(x_in) : x_in;
  // Row-parallel (`leave` set): the bias is added once, after the partial products are summed.
  torch::Tensor y = kernels::linear(x, weight, leave ? torch::Tensor() : bias);
  torch::Tensor h = dropped(x);
  // In the adapter's fp32, as PEFT casts x to lora_A's dtype (autocast may run these in bf16), and
  // added in the base output's dtype.
  torch::Tensor delta = torch::nn::functional::linear(torch::nn::functional::linear(h.to(lora_A.scalar_type()), lora_A),
                                                      lora_B);
  y = y + (delta * scaling).to(y.scalar_type());
  if (!leave) return y;
  y = leave(y);
  return bias.defined() ? y + bias : y;
}

torch::Tensor LoraLinearImpl::merged_weight() const {
  torch::NoGradGuard no_grad;
  auto delta = torch::matmul(lora_B.to(torch::kFloat), lora_A.to(torch::kFloat)) * scaling;
  return (weight.to(torch::kFloat) + delta).to(weight.scalar_type());
}

}  // namespace forma::peft
