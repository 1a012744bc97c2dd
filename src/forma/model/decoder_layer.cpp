#include "forma/model/decoder_layer.h"

namespace forma {

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, const Architecture& arch, int64_t layer_index) {
  sandwich_ = c.post_block_norms;
  if (!sandwich_ || c.pre_block_norms) input_layernorm_ = register_module("input_layernorm", hidden_norm(c, arch));
  if (c.kv_lora_rank > 0) {
    mla_ = register_module("self_attn", MlaAttention(c, arch, layer_index));
  } else {
    self_attn_ = register_module("self_attn", Attention(c, arch, layer_index));
  }
  parallel_ = c.parallel_block;
  residual_multiplier_ = c.residual_multiplier;
  if (!parallel_ || c.parallel_mlp_norm) {
    post_attention_layernorm_ = register_module("post_attention_layernorm", hidden_norm(c, arch));
  }
  if (sandwich_) {
    if (c.pre_block_norms) pre_feedforward_layernorm_ = register_module("pre_feedforward_layernorm", hidden_norm(c, arch));
    post_feedforward_layernorm_ = register_module("post_feedforward_layernorm", hidden_norm(c, arch));
  }
  if (c.layer_is_sparse(layer_index)) {
    register_module("block_sparse_moe", SparseMoe(c));
    moe_ = true;
  } else if (c.is_moe()) {  // a dense layer among sparse ones (qwen2_moe's mlp_only_layers), its own width
    ModelConfig dense = c;
    dense.intermediate_size = c.dense_intermediate_size;
    mlp_ = register_module("mlp", Mlp(dense, arch));
  } else {
    mlp_ = register_module("mlp", Mlp(c, arch));
  }
}

LayerOutput DecoderLayerImpl::forward(const torch::Tensor& x, const LayerInputs& inputs) {
  if (parallel_) {  // phi: both blocks read the same normed x; HF's sum order (attn + mlp) + x
    torch::Tensor normed = input_layernorm_->forward(x);
    torch::Tensor attn = attend(normed, inputs);
    if (post_attention_layernorm_) {  // gpt_neox: the MLP has its own norm; HF's order mlp + attn + x
      return {scaled(mlp_->forward(post_attention_layernorm_->forward(x)) + attn) + x, torch::Tensor()};
    }
    return {scaled(attn + mlp_->forward(normed)) + x, torch::Tensor()};
  }
  if (sandwich_) {  // gemma2, olmo2: each block's output normed before its residual add
    torch::Tensor attn = attend(input_layernorm_ ? input_layernorm_->forward(x) : x, inputs);
    torch::Tensor h = x + scaled(post_attention_layernorm_->forward(attn));
    torch::Tensor normed = pre_feedforward_layernorm_ ? pre_feedforward_layernorm_->forward(h) : h;
    LayerOutput out = feed_forward(normed);
    out.hidden = h + scaled(post_feedforward_layernorm_->forward(out.hidden));
    return out;
  }
  torch::Tensor h = x + scaled(attend(input_layernorm_->forward(x), inputs));
  LayerOutput out = feed_forward(post_attention_layernorm_->forward(h));
  out.hidden = h + scaled(out.hidden);
  return out;
}

LayerOutput DecoderLayerImpl::feed_forward(const torch::Tensor& normed) {
  if (moe_) {
    auto* moe = dynamic_cast<MoeBlock*>(named_children()["block_sparse_moe"].get());
    auto [out, router_logits] = moe->forward(normed);
    return {out, router_logits};
  }
  return {mlp_->forward(normed), torch::Tensor()};
}

}  // namespace forma
