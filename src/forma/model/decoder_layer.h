// One pre-norm decoder layer: h = x + attn(norm1(x)); out = h + mlp(norm2(h)) (or, with
// config.parallel_block, out = x + attn(norm1(x)) + mlp(norm1(x))), with HF's child
// names (self_attn, input_layernorm, post_attention_layernorm, and mlp or block_sparse_moe).
// config.residual_multiplier (granite) scales each block's output before it is added.
// With config.post_block_norms (sandwich norms, HF's gemma2 names): h = x + post_attention_layernorm(
// attn(input_layernorm(x))); out = h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))),
// the two pre norms absent without config.pre_block_norms (olmo2).
#pragma once
#include <torch/torch.h>

#include "forma/model/attention.h"
#include "forma/model/mla_attention.h"
#include "forma/model/mlp.h"
#include "forma/model/norm.h"

namespace forma {

struct LayerOutput {
  torch::Tensor hidden;         // [B, T, C]
  torch::Tensor router_logits;  // [B*T, E] for MoE layers, undefined otherwise
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& config, const Architecture& arch, int64_t layer_index);
  LayerOutput forward(const torch::Tensor& x, const LayerInputs& inputs);

 private:
  LayerOutput feed_forward(const torch::Tensor& normed);  // the MLP or MoE block: hidden = its output
  Norm input_layernorm_{nullptr}, post_attention_layernorm_{nullptr};
  Norm pre_feedforward_layernorm_{nullptr}, post_feedforward_layernorm_{nullptr};  // post_block_norms
  Attention self_attn_{nullptr};
  MlaAttention mla_{nullptr};  // config.kv_lora_rank > 0: registered as self_attn instead
  torch::Tensor attend(const torch::Tensor& x, const LayerInputs& inputs) {
    return mla_ ? mla_->forward(x, inputs) : self_attn_->forward(x, inputs);
  }
  Mlp mlp_{nullptr};
  bool sandwich_ = false;  // config.post_block_norms
  // x + attn(norm1(x)) + mlp(norm1(x)): no post_attention_layernorm, unless the MLP has its own
  // norm (config.parallel_mlp_norm): x + attn(norm1(x)) + mlp(norm2(x)).
  bool parallel_ = false;
  bool moe_ = false;  // the block is called by name ("block_sparse_moe"): it may be replaced
  // Granite: each block's output times this before the residual add (1: left as is).
  double residual_multiplier_ = 1.0;
  torch::Tensor scaled(const torch::Tensor& t) const {
    return residual_multiplier_ == 1.0 ? t : t * residual_multiplier_;
  }
};
TORCH_MODULE(DecoderLayer);

}  // namespace forma
