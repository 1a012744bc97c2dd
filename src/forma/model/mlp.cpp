#include "forma/model/mlp.h"

#include <limits>

#include "forma/core/error.h"
#include "forma/model/module_call.h"

namespace forma {

using torch::nn::Linear;
using torch::nn::LinearOptions;

torch::Tensor activation(const std::string& name, const torch::Tensor& x) {
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  if (name == "relu2") return torch::relu(x).square();  // nemotron's squared ReLU
  fail("unsupported activation '{}'", name);
}

MlpImpl::MlpImpl(const ModelConfig& c, const Architecture& arch)
    : gated_(arch.gated_mlp), act_(c.hidden_act) {
  const bool bias = arch.mlp_bias(c);
  if (gated_) {
    register_module("gate_proj", Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(bias)));
  }
  register_module("up_proj", Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(bias)));
  register_module("down_proj", Linear(LinearOptions(c.intermediate_size, c.hidden_size).bias(bias)));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor up = call_child(*this, "up_proj", x);
  torch::Tensor h = gated_ ? activation(act_, call_child(*this, "gate_proj", x)) * up : activation(act_, up);
  return call_child(*this, "down_proj", h);
}

ExpertImpl::ExpertImpl(const ModelConfig& c) : act_(c.hidden_act) {
  register_module("w1", Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(false)));
  register_module("w2", Linear(LinearOptions(c.intermediate_size, c.hidden_size).bias(false)));
  register_module("w3", Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(false)));
}

torch::Tensor ExpertImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = activation(act_, call_child(*this, "w1", x)) * call_child(*this, "w3", x);
  return call_child(*this, "w2", h);
}

SharedExpertImpl::SharedExpertImpl(const ModelConfig& c) : act_(c.hidden_act) {
  const int64_t width = c.shared_expert_intermediate_size;
  register_module("gate_proj", Linear(LinearOptions(c.hidden_size, width).bias(false)));
  register_module("up_proj", Linear(LinearOptions(c.hidden_size, width).bias(false)));
  register_module("down_proj", Linear(LinearOptions(width, c.hidden_size).bias(false)));
}

torch::Tensor SharedExpertImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = activation(act_, call_child(*this, "gate_proj", x)) * call_child(*this, "up_proj", x);
  return call_child(*this, "down_proj", h);
}

SparseMoeImpl::SparseMoeImpl(const ModelConfig& c)
    : top_k_(c.num_experts_per_tok),
      renormalize_(c.moe_renormalize),
      sigmoid_(c.moe_sigmoid_scores),
      groups_(c.moe_groups),
      topk_groups_(c.moe_topk_groups),
      routed_scaling_(c.routed_scaling_factor),
      shared_gated_(!c.shared_expert_ungated) {
  check(groups_ >= 1 && c.num_local_experts % groups_ == 0 && topk_groups_ >= 1 && topk_groups_ <= groups_,
        "{}: {} experts in n_group={} groups, topk_group={}", c.source, c.num_local_experts, groups_, topk_groups_);
  auto gate = register_module("gate", Linear(LinearOptions(c.hidden_size, c.num_local_experts).bias(false)));
  if (sigmoid_) {
    // HF's persistent buffer: loaded and saved with the weights, never trained.
    gate->register_parameter("e_score_correction_bias", torch::zeros({c.num_local_experts}), /*requires_grad=*/false);
  }
  experts_ = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < c.num_local_experts; ++e) experts_->push_back(Expert(c));
  if (c.shared_expert_intermediate_size > 0) {
    shared_expert_ = register_module("shared_expert", SharedExpert(c));
    // One gate value per token: a scalar, so the weight stays whole under tensor parallelism.
    if (shared_gated_) register_module("shared_expert_gate", Linear(LinearOptions(c.hidden_size, 1).bias(false)));
  }
}

std::pair<torch::Tensor, torch::Tensor> SparseMoeImpl::route(const torch::Tensor& router_logits) const {
  torch::Tensor logits = router_logits.to(torch::kFloat);
  torch::Tensor scores = sigmoid_ ? torch::sigmoid(logits) : torch::softmax(logits, 1);
  torch::Tensor choice = scores;
  if (sigmoid_) {  // v3: the bias steers the choice, the weights stay the plain scores
    auto* gate = named_children()["gate"].get();
    choice = scores + gate->named_parameters(false)["e_score_correction_bias"].to(torch::kFloat);
  }
  if (groups_ > 1) {  // HF group_limited_greedy / noaux_tc: experts outside the best groups drop out
    const int64_t n = choice.size(0), experts = choice.size(1);
    torch::Tensor grouped = choice.view({n, groups_, experts / groups_});
    torch::Tensor group_scores = sigmoid_ ? std::get<0>(grouped.topk(2, -1)).sum(-1) : std::get<0>(grouped.max(-1));
    torch::Tensor kept = std::get<1>(group_scores.topk(topk_groups_, -1));
    torch::Tensor keep = torch::zeros_like(group_scores).scatter(1, kept, 1.0).to(torch::kBool);
    keep = keep.unsqueeze(-1).expand({n, groups_, experts / groups_}).reshape({n, experts});
    choice = choice.masked_fill(keep.logical_not(), sigmoid_ ? -std::numeric_limits<double>::infinity() : 0.0);
  }
  auto [top, chosen] = choice.topk(top_k_, -1);  // [N, k]
  torch::Tensor weights = sigmoid_ ? scores.gather(1, chosen) : top;
  if (renormalize_) weights = sigmoid_ ? weights / (weights.sum(-1, true) + 1e-20) : weights / weights.sum(-1, true);
  if (routed_scaling_ != 1.0) weights = weights * routed_scaling_;
  return {chosen, weights};
}

std::pair<torch::Tensor, torch::Tensor> SparseMoeImpl::forward(const torch::Tensor& x) {
  const int64_t hidden = x.size(-1);
  torch::Tensor tokens = x.reshape({-1, hidden});                      // [N, C]
  torch::Tensor router_logits = call_child(*this, "gate", tokens);      // [N, E]
  auto [chosen, weights] = route(router_logits);                        // [N, k]
  weights = weights.to(x.scalar_type());
  torch::Tensor out = torch::zeros_like(tokens);
  const int64_t num_experts = router_logits.size(1);
  for (int64_t e = 0; e < num_experts; ++e) {
    // (token, slot) pairs that chose expert e
    std::vector<torch::Tensor> hit = torch::where(chosen == e);
    torch::Tensor token_index = hit[0], slot = hit[1];
    if (token_index.numel() == 0) continue;
    torch::Tensor expert_out = experts_[e]->as<ExpertImpl>()->forward(tokens.index_select(0, token_index));
    torch::Tensor w = weights.index({token_index, slot}).unsqueeze(-1);  // [n, 1]
    out = out.index_add(0, token_index, expert_out * w);
  }
  if (shared_expert_) {  // HF's order: routed + sigmoid(gate) * shared
    torch::Tensor shared = shared_expert_->forward(tokens);
    out = shared_gated_ ? out + torch::sigmoid(call_child(*this, "shared_expert_gate", tokens)) * shared
                        : out + shared;
  }
  return {out.view(x.sizes()), router_logits};
}

torch::Tensor load_balancing_loss(const std::vector<torch::Tensor>& router_logits, int64_t top_k) {
  torch::Tensor logits = torch::cat(router_logits, 0);  // [L*N, E]
  const int64_t num_experts = logits.size(1);
  torch::Tensor probs = torch::softmax(logits, -1);
  torch::Tensor chosen = std::get<1>(probs.topk(top_k, -1));                        // [L*N, k]
  torch::Tensor expert_mask = torch::one_hot(chosen, num_experts).to(probs.scalar_type());  // [L*N, k, E]
  torch::Tensor tokens_per_expert = expert_mask.mean(0);                            // [k, E]
  torch::Tensor router_prob_per_expert = probs.mean(0);                             // [E]
  return (tokens_per_expert * router_prob_per_expert.unsqueeze(0)).sum() * num_experts;
}

}  // namespace forma
