// Feed-forward blocks: the dense MLP (SiLU-gated down(act(gate(x)) * up(x)) for the llama family,
// down(act(up(x))) for gpt2) and Mixtral's sparse mixture of experts with HF's routing.
#pragma once
#include <torch/torch.h>

#include "forma/model/architecture.h"

namespace forma {

// The activation named by config.hidden_act (silu, gelu_new = tanh GELU, gelu, relu, relu2 = relu squared).
torch::Tensor activation(const std::string& name, const torch::Tensor& x);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const ModelConfig& config, const Architecture& arch);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, C] -> [B, T, C]

 private:
  bool gated_;
  std::string act_;
};
TORCH_MODULE(Mlp);

// One Mixtral expert: w2(act(w1(x)) * w3(x)).
class ExpertImpl : public torch::nn::Module {
 public:
  explicit ExpertImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::string act_;
};
TORCH_MODULE(Expert);

// A mixture-of-experts block as DecoderLayer calls it: by its name, through this interface, so
// that tensor parallelism can wrap the block (sequence-parallel regions around it).
class MoeBlock : public torch::nn::Module {
 public:
  // x [B, T, C] -> output [B, T, C] and router logits [B*T, E] (for the load-balancing loss).
  virtual std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) = 0;
};

// Qwen2-MoE's shared expert, HF's names: down_proj(act(gate_proj(x)) * up_proj(x)), no biases,
// width config.shared_expert_intermediate_size.
class SharedExpertImpl : public torch::nn::Module {
 public:
  explicit SharedExpertImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::string act_;
};
TORCH_MODULE(SharedExpert);

// HF MixtralSparseMoeBlock: softmax over all experts' router logits, top-k, renormalised
// (config.moe_renormalize; else the probabilities as they are: olmoe, qwen2_moe), weighted sum of
// the chosen experts' outputs. With config.shared_expert_intermediate_size (qwen2_moe) it adds
// sigmoid(shared_expert_gate(x)) * shared_expert(x), or shared_expert(x) with
// config.shared_expert_ungated (deepseek). DeepSeek's routing: config.moe_sigmoid_scores, moe_groups,
// moe_topk_groups, routed_scaling_factor (config.h); v3's e_score_correction_bias is a parameter of
// the gate (gate.e_score_correction_bias) without gradient, as HF's buffer is not trained.
class SparseMoeImpl : public MoeBlock {
 public:
  explicit SparseMoeImpl(const ModelConfig& config);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) override;

 private:
  // [N, E] router logits -> chosen experts [N, k] and their weights (fp32): softmax or sigmoid
  // scores, group-limited choice, renormalised, routed_scaling_factor (DeepSeek's routers).
  std::pair<torch::Tensor, torch::Tensor> route(const torch::Tensor& router_logits) const;
  int64_t top_k_;
  bool renormalize_;
  bool sigmoid_ = false;
  int64_t groups_ = 1, topk_groups_ = 1;
  double routed_scaling_ = 1.0;
  bool shared_gated_ = true;
  torch::nn::ModuleList experts_;
  SharedExpert shared_expert_{nullptr};
};
TORCH_MODULE(SparseMoe);

// HF load_balancing_loss_func: num_experts * sum_e(fraction of top-k slots routed to e * mean
// router probability of e), over every layer's router logits concatenated ([L*N, E]).
torch::Tensor load_balancing_loss(const std::vector<torch::Tensor>& router_logits, int64_t top_k);

}  // namespace forma
