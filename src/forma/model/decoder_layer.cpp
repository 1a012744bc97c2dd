#include "forma/model/decoder_layer.h"

namespace forma {

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, const Architecture& arch, int64_t layer_index) {
  input_layernorm_ = register_module("input_layernorm", hidden_norm(c, arch));
  self_attn_ = register_module("self_attn", Attention(c, arch, layer_index));
  parallel_ = c.parallel_block;
  residual_multiplier_ = c.residual_multiplier;
  if (!parallel_ || c.parallel_mlp_norm) {
    post_attention_layernorm_ = register_module("post_attention_layernorm", hidden_norm(c, arch));
  }
  if (c.is_moe()) {
    register_module("block_sparse_moe", SparseMoe(c));
    moe_ = true;
  } else {
    mlp_ = register_module("mlp", Mlp(c, arch));
  }
}

LayerOutput DecoderLayerImpl::forward(const torch::Tensor& x, const LayerInputs& inputs) {
  if (parallel_) {  // phi: both blocks read the same normed x; HF's sum order (attn + mlp) + x
    torch::Tensor normed = input_layernorm_->forward(x);
    torch::Tensor attn = self_attn_->forward(normed, inputs);
    if (post_attention_layernorm_) {  // gpt_neox: the MLP has its own norm; HF's order mlp + attn + x
      return {scaled(mlp_->forward(post_attention_layernorm_->forward(x)) + attn) + x, torch::Tensor()};
    }
    return {scaled(attn + mlp_->forward(normed)) + x, torch::Tensor()};
  }
  torch::Tensor h = x + scaled(self_attn_->forward(input_layernorm_->forward(x), inputs));
  torch::Tensor normed = post_attention_layernorm_->forward(h);
  if (moe_) {
    auto* moe = dynamic_cast<MoeBlock*>(named_children()["block_sparse_moe"].get());
    auto [out, router_logits] = moe->forward(normed);
    return {h + scaled(out), router_logits};
  }
  return {h + scaled(mlp_->forward(normed)), torch::Tensor()};
}

}  // namespace forma
