#include "forma/train/adamw.h"

#include <cmath>

#include "forma/core/error.h"

namespace forma::train {

std::vector<NamedParameter> decay_groups(const torch::nn::Module& module) {
  std::vector<NamedParameter> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    out.push_back({item.key(), item.value(), item.value().dim() >= 2});
  }
  return out;
}

AdamW::AdamW(std::vector<NamedParameter> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (auto& p : params_) {
    check(!state_.count(p.name), "AdamW: parameter '{}' given twice", p.name);
    state_[p.name];
  }
}

void adamw_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq,
                  int64_t step, double lr, double weight_decay, const AdamWOptions& options) {
  const double beta1 = options.beta1, beta2 = options.beta2;
  // The same operations in the same order as torch's AdamW (single-tensor path), so that results
  // are bit-equal: decoupled decay first, then the moments, then the bias-corrected update.
  if (weight_decay != 0) param.mul_(1 - lr * weight_decay);
  double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  exp_avg.mul_(beta1).add_(grad, 1 - beta1);
  exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  auto denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options.eps);
  double step_size = lr / bias_correction1;
  param.addcdiv_(exp_avg, denom, -step_size);
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  for (auto& p : params_) {
    const auto& grad = p.tensor.grad();
    if (!grad.defined()) continue;
    auto& s = state_[p.name];
    if (!s.exp_avg.defined()) {
      s.exp_avg = torch::zeros_like(p.tensor, torch::MemoryFormat::Preserve);
      s.exp_avg_sq = torch::zeros_like(p.tensor, torch::MemoryFormat::Preserve);
    }
    s.step += 1;
    adamw_update(p.tensor, grad, s.exp_avg, s.exp_avg_sq, s.step, lr, p.decay ? options_.weight_decay : 0.0,
                 options_);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) {
    auto& grad = p.tensor.mutable_grad();
    if (grad.defined()) grad = torch::Tensor();  // set_to_none, as torch >= 2.0 defaults to
  }
}

std::map<std::string, torch::Tensor> AdamW::state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : params_) {
    const auto& s = state_.at(p.name);
    if (!s.exp_avg.defined()) continue;
    out[p.name + ".exp_avg"] = s.exp_avg;
    out[p.name + ".exp_avg_sq"] = s.exp_avg_sq;
    out[p.name + ".step"] = torch::tensor({s.step}, torch::kInt64);
  }
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  auto get = [&](const std::string& name, const torch::Tensor& like) {
    auto it = state.find(name);
    check(it != state.end(), "{}: optimizer state '{}' is missing", source, name);
    check(it->second.sizes() == like.sizes(), "{}: optimizer state '{}' has shape {} but the parameter has {}",
          source, name, fmt::join(it->second.sizes(), "x"), fmt::join(like.sizes(), "x"));
    return it->second.to(like.device(), like.scalar_type()).clone();  // a CPU checkpoint onto a GPU model too
  };
  std::map<std::string, State> loaded;
  for (auto& p : params_) {
    State s;
    auto step = state.find(p.name + ".step");
    if (step != state.end()) {
      check(step->second.numel() == 1, "{}: optimizer state '{}.step' must hold one number", source, p.name);
      s.step = step->second.to(torch::kInt64).item<int64_t>();
      s.exp_avg = get(p.name + ".exp_avg", p.tensor);
      s.exp_avg_sq = get(p.name + ".exp_avg_sq", p.tensor);
    }
    loaded[p.name] = s;
  }
  for (auto& [name, tensor] : state) {
    auto dot = name.rfind('.');
    check(dot != std::string::npos && loaded.count(name.substr(0, dot)),
          "{}: optimizer state '{}' belongs to no parameter of this model", source, name);
  }
  state_ = std::move(loaded);
}

double clip_grad_norm(const std::vector<NamedParameter>& params, double max_norm,
                      const ModelParallelSum& model_parallel_sum) {
  torch::NoGradGuard no_grad;
  double total_norm = 0;
  if (model_parallel_sum) {
    double sum_of_squares = 0;
    for (auto& p : params) {
      if (!p.tensor.grad().defined()) continue;
      double n = torch::linalg_vector_norm(p.tensor.grad(), 2, c10::nullopt, false, torch::kFloat64).item<double>();
      sum_of_squares += p.norm_share * n * n;
    }
    total_norm = std::sqrt(model_parallel_sum(sum_of_squares));
  } else {
    std::vector<torch::Tensor> norms;
    for (auto& p : params) {
      if (p.tensor.grad().defined()) norms.push_back(p.tensor.grad().norm(2));
    }
    if (norms.empty()) return 0.0;
    // As torch.nn.utils.clip_grad_norm_: the norm of the per-tensor norms, one scale for all.
    total_norm = torch::stack(norms).norm(2).item<double>();
  }
  scale_gradients_to_norm(params, total_norm, max_norm);
  return total_norm;
}

void scale_gradients_to_norm(const std::vector<NamedParameter>& params, double norm, double max_norm) {
  if (max_norm <= 0) return;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1) return;
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    if (p.tensor.grad().defined()) p.tensor.grad().mul_(coef);
  }
}

}  // namespace forma::train
