#include "forma/model/mla_attention.h"

#include <ATen/ops/scaled_dot_product_attention.h>

#include <cmath>
#include <limits>

#include "forma/core/error.h"
#include "forma/model/module_call.h"

namespace forma {

double mla_softmax_scale(const ModelConfig& c) {
  double scale = 1.0 / std::sqrt(static_cast<double>(c.qk_nope_head_dim + c.head_dim));
  // HF yarn_apply_mscale: any rope_type but default, with a nonzero mscale_all_dim.
  if (c.rope_scaling && c.rope_scaling->mscale_all_dim && *c.rope_scaling->mscale_all_dim != 0) {
    const double factor = c.rope_scaling->factor;
    const double m = factor <= 1 ? 1.0 : 0.1 * *c.rope_scaling->mscale_all_dim * std::log(factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

MlaAttentionImpl::MlaAttentionImpl(const ModelConfig& c, const Architecture& arch, int64_t layer_index)
    : nope_(c.qk_nope_head_dim),
      rope_dim_(c.head_dim),
      v_dim_(c.v_head_dim),
      kv_rank_(c.kv_lora_rank),
      scale_(mla_softmax_scale(c)),
      layer_index_(layer_index),
      rope_interleaved_(c.rope_interleaved) {
  using torch::nn::Linear;
  using torch::nn::LinearOptions;
  check(arch.position == PositionKind::Rope && !c.alibi, "{}: multi-head latent attention needs RoPE", c.source);
  const int64_t heads = c.num_attention_heads, q_width = heads * (nope_ + rope_dim_);
  const bool bias = c.attention_bias;  // HF: q_a_proj, kv_a_proj_with_mqa and o_proj
  const double latent_eps = 1e-6;      // HF builds both latent RMSNorms with its default eps, not rms_norm_eps
  if (c.q_lora_rank > 0) {
    register_module("q_a_proj", Linear(LinearOptions(c.hidden_size, c.q_lora_rank).bias(bias)));
    q_a_layernorm_ = register_module("q_a_layernorm", Norm(NormKind::RMSNorm, c.q_lora_rank, latent_eps, false));
    register_module("q_b_proj", Linear(LinearOptions(c.q_lora_rank, q_width).bias(false)));
  } else {
    register_module("q_proj", Linear(LinearOptions(c.hidden_size, q_width).bias(false)));
  }
  register_module("kv_a_proj_with_mqa", Linear(LinearOptions(c.hidden_size, kv_rank_ + rope_dim_).bias(bias)));
  kv_a_layernorm_ = register_module("kv_a_layernorm", Norm(NormKind::RMSNorm, kv_rank_, latent_eps, false));
  register_module("kv_b_proj", Linear(LinearOptions(kv_rank_, heads * (nope_ + v_dim_)).bias(false)));
  register_module("o_proj", Linear(LinearOptions(heads * v_dim_, c.hidden_size).bias(bias)));
}

torch::Tensor MlaAttentionImpl::forward(const torch::Tensor& x, const LayerInputs& inputs) {
  torch::Tensor q = q_a_layernorm_
                        ? call_child(*this, "q_b_proj", q_a_layernorm_->forward(call_child(*this, "q_a_proj", x)))
                        : call_child(*this, "q_proj", x);  // [B, T, H * (nope + rope)]
  // Sizes from the projection: with sequence parallel, x holds this rank's slice of the sequence
  // and q (its rank's heads) all of it.
  const int64_t batch = q.size(0), count = q.size(1);
  const int64_t heads = q.size(-1) / (nope_ + rope_dim_);
  q = q.view({batch, count, heads, nope_ + rope_dim_}).transpose(1, 2);  // [B, H, T, nope + rope]
  torch::Tensor compressed = call_child(*this, "kv_a_proj_with_mqa", x);  // [B, T, rank + rope]
  torch::Tensor latent = kv_a_layernorm_->forward(compressed.narrow(-1, 0, kv_rank_));
  torch::Tensor k_pe = compressed.narrow(-1, kv_rank_, rope_dim_).unsqueeze(1);  // [B, 1, T, rope]
  // RoPE on the last rope dims of q and on the one shared k_pe. HF's rotations (v2's complex
  // product on adjacent pairs, v3's rope_interleave) rotate pairs (2i, 2i+1); v3 writes the rotated
  // pairs out de-interleaved, a permutation shared by q and k that leaves q.k unchanged.
  torch::Tensor q_pe = apply_rope(q.narrow(-1, nope_, rope_dim_), inputs.rope, rope_interleaved_);
  k_pe = apply_rope(k_pe, inputs.rope, rope_interleaved_);
  q = torch::cat({q.narrow(-1, 0, nope_), q_pe}, -1);
  torch::Tensor kv = call_child(*this, "kv_b_proj", latent);  // [B, T, H * (nope + v)]
  kv = kv.view({batch, count, heads, nope_ + v_dim_}).transpose(1, 2);
  torch::Tensor k = torch::cat({kv.narrow(-1, 0, nope_), k_pe.expand({batch, heads, count, rope_dim_})}, -1);
  torch::Tensor v = kv.narrow(-1, nope_, v_dim_);
  if (inputs.cache) std::tie(k, v) = inputs.cache->update(layer_index_, k, v.contiguous());
  const int64_t keys = k.size(2);
  check(inputs.mask.defined() || count == 1 || count == keys,
        "attention layer {}: {} queries over {} keys need a mask", layer_index_, count, keys);
  torch::Tensor out;
  if (inputs.kernel == AttentionKernel::Fused) {
    std::optional<torch::Tensor> mask;
    if (inputs.mask.defined()) mask = inputs.mask;
    out = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0,
                                           /*is_causal=*/!inputs.mask.defined() && count > 1, scale_);
  } else {  // HF's eager path: scores in the model dtype, softmax in fp32
    torch::Tensor allowed = inputs.mask.defined() ? inputs.mask : causal_mask(keys - count, count, 0, q.device());
    torch::Tensor scores = torch::matmul(q, k.transpose(2, 3)) * scale_;
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
    out = torch::matmul(torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type()), v);
  }
  out = out.transpose(1, 2).reshape({batch, count, heads * v_dim_});  // [B, T, H * v]
  return call_child(*this, "o_proj", out);
}

}  // namespace forma
