// DeepSeek's multi-head latent attention (MLA, HF DeepseekV2Attention/DeepseekV3Attention), chosen
// by config.kv_lora_rank > 0. q = q_proj(x), or q_b_proj(q_a_layernorm(q_a_proj(x))) with
// config.q_lora_rank; kv_a_proj_with_mqa(x) gives a kv_lora_rank latent (normed by kv_a_layernorm,
// then up-projected by kv_b_proj into every head's k_nope and v) and one RoPE key k_pe shared by all
// heads. Each q/k head is [nope dims | RoPE dims] (qk_nope_head_dim + head_dim), v heads
// v_head_dim. The KV cache holds the up-projected per-head k and v (HF caches the latent: the same
// numbers, more memory). Softmax scale (nope + rope)^-0.5, times mscale(factor, mscale_all_dim)^2
// with yarn rope_scaling (HF yarn_apply_mscale).
#pragma once
#include <torch/torch.h>

#include "forma/model/attention.h"

namespace forma {

class MlaAttentionImpl : public torch::nn::Module {
 public:
  MlaAttentionImpl(const ModelConfig& config, const Architecture& arch, int64_t layer_index);
  // x [B, T, C] -> [B, T, C]
  torch::Tensor forward(const torch::Tensor& x, const LayerInputs& inputs);

 private:
  Norm q_a_layernorm_{nullptr}, kv_a_layernorm_{nullptr};
  int64_t nope_, rope_dim_, v_dim_, kv_rank_;
  double scale_;
  int64_t layer_index_;
  bool rope_interleaved_;
};
TORCH_MODULE(MlaAttention);

// The softmax scale of q.k in MLA (see above).
double mla_softmax_scale(const ModelConfig& config);

}  // namespace forma
