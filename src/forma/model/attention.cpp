#include "forma/model/attention.h"

#include <ATen/ops/scaled_dot_product_attention.h>

#include <cmath>
#include <limits>

#include "forma/core/error.h"
#include "forma/kernels/decode_attention.h"
#include "forma/model/module_call.h"

namespace forma {

bool needs_causal_mask(int64_t start, int64_t count, int64_t window) {
  const bool plain_causal = start == 0 || count == 1;
  // The window cuts key j off query i when j <= i - window: never while every position < window.
  const bool window_cuts = window > 0 && start + count > window;
  return !plain_causal || window_cuts;
}

torch::Tensor causal_mask(int64_t start, int64_t count, int64_t window, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor i = torch::arange(start, start + count, opts).unsqueeze(1);  // [T, 1]
  torch::Tensor j = torch::arange(0, start + count, opts).unsqueeze(0);      // [1, S]
  torch::Tensor allowed = j <= i;
  if (window > 0) allowed = allowed.logical_and(j > i - window);
  return allowed;
}

torch::Tensor padded_causal_mask(int64_t start, int64_t count, int64_t window,
                                 const torch::Tensor& left_padding) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(left_padding.device());
  torch::Tensor i = torch::arange(start, start + count, opts).view({1, count, 1});      // [1, T, 1]
  torch::Tensor j = torch::arange(0, start + count, opts).view({1, 1, start + count});  // [1, 1, S]
  torch::Tensor first = left_padding.view({-1, 1, 1});                                 // [B, 1, 1]
  torch::Tensor allowed = (j <= i).logical_and(j >= first);
  if (window > 0) allowed = allowed.logical_and(j > i - window);
  return allowed.logical_or(j == i).unsqueeze(1);  // [B, 1, T, S]
}

torch::Tensor packed_causal_mask(const torch::Tensor& segment_ids, int64_t window) {
  const int64_t count = segment_ids.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(segment_ids.device());
  torch::Tensor i = torch::arange(count, opts).view({1, count, 1});  // [1, T, 1]
  torch::Tensor j = torch::arange(count, opts).view({1, 1, count});  // [1, 1, T]
  torch::Tensor same = segment_ids.unsqueeze(2) == segment_ids.unsqueeze(1);  // [B, T, T]
  torch::Tensor allowed = (j <= i).logical_and(same);
  if (window > 0) allowed = allowed.logical_and(j > i - window);
  return allowed.unsqueeze(1);  // [B, 1, T, T]
}

torch::Tensor alibi_slopes(int64_t heads) {
  check(heads > 0, "alibi_slopes: {} heads", heads);
  // HF's _get_alibi_slopes, op for op in fp32 so the slopes are bit-identical.
  const int64_t closest = int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(heads))));
  auto series = [](int64_t n, int64_t first, int64_t count, int64_t step) {
    const double base = std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(n)) - 3)));
    torch::Tensor powers = torch::arange(first, first + step * count, step, torch::kInt32);
    return torch::pow(torch::scalar_tensor(base, torch::kFloat), powers);
  };
  torch::Tensor slopes = series(closest, 1, closest, 1);
  if (closest != heads) {
    const int64_t remaining = std::min(closest, heads - closest);
    slopes = torch::cat({slopes, series(2 * closest, 1, remaining, 2)});
  }
  return slopes;
}

torch::Tensor alibi_bias(const torch::Tensor& slopes, int64_t count, int64_t keys) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(slopes.device());
  torch::Tensor i = torch::arange(keys - count, keys, opts).view({1, count, 1});  // [1, T, 1]
  torch::Tensor j = torch::arange(0, keys, opts).view({1, 1, keys});               // [1, 1, S]
  return slopes.to(torch::kFloat).view({-1, 1, 1}) * (j - i);                      // [H, T, S]
}

AttentionImpl::AttentionImpl(const ModelConfig& c, const Architecture& arch, int64_t layer_index)
    : head_dim_(c.head_dim),
      attention_scale_(c.attention_scale),
      softcap_(c.attn_logit_softcapping),
      layer_index_(layer_index),
      rope_(arch.position == PositionKind::Rope && !c.alibi),
      rope_interleaved_(c.rope_interleaved),
      clip_qkv_(c.clip_qkv) {
  using torch::nn::Linear;
  using torch::nn::LinearOptions;
  const int64_t q_width = c.num_attention_heads * c.head_dim;
  const int64_t kv_width = c.num_key_value_heads * c.head_dim;
  const bool qkv_bias = arch.qkv_bias(c);
  register_module("q_proj", Linear(LinearOptions(c.hidden_size, q_width).bias(qkv_bias)));
  register_module("k_proj", Linear(LinearOptions(c.hidden_size, kv_width).bias(qkv_bias)));
  register_module("v_proj", Linear(LinearOptions(c.hidden_size, kv_width).bias(qkv_bias)));
  register_module("o_proj", Linear(LinearOptions(q_width, c.hidden_size).bias(arch.o_bias(c))));
  if (c.qk_norm_whole) {
    q_norm_ = register_module("q_norm", Norm(NormKind::RMSNorm, q_width, c.norm_eps, c.norm_weight_offset));
    k_norm_ = register_module("k_norm", Norm(NormKind::RMSNorm, kv_width, c.norm_eps, c.norm_weight_offset));
    whole_qk_norm_ = true;
  } else if (c.qk_norm) {
    q_norm_ = register_module("q_norm", Norm(NormKind::RMSNorm, c.head_dim, c.norm_eps, c.norm_weight_offset));
    k_norm_ = register_module("k_norm", Norm(NormKind::RMSNorm, c.head_dim, c.norm_eps, c.norm_weight_offset));
  }
  if (c.alibi) alibi_slopes_ = alibi_slopes(c.num_attention_heads);
  if (c.head_layernorm) {
    q_layernorm_ = register_module("q_layernorm", HeadNorms(c.num_attention_heads, c.head_dim, c.norm_eps));
    k_layernorm_ = register_module("k_layernorm", HeadNorms(c.num_key_value_heads, c.head_dim, c.norm_eps));
  }
}

torch::Tensor AttentionImpl::project_heads(const char* name, const torch::Tensor& x, Norm whole_norm) {
  // Sizes from y, not x: with sequence parallel x holds T/tp positions, y all T.
  torch::Tensor y = call_child(*this, name, x);  // [B, T, H*D]
  if (whole_norm) y = whole_norm->forward(y);     // qk_norm_whole: over every head at once
  const int64_t heads = y.size(-1) / head_dim_;
  return y.view({y.size(0), y.size(1), heads, head_dim_}).transpose(1, 2);  // [B, H, T, D]
}

torch::Tensor grouped_attention_products(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& allowed, double scale_divisor, double softcap,
                                         const torch::Tensor& bias) {
  const int64_t batch = q.size(0), q_heads = q.size(1), count = q.size(2), dim = q.size(3);
  const int64_t kv_heads = k.size(1), keys = k.size(2), group = q_heads / kv_heads;
  check(q_heads % kv_heads == 0, "attention: {} query heads for {} kv heads", q_heads, kv_heads);
  // GQA/MQA: query head h reads kv head h / group, as HF's repeat_kv, without copying K and V per
  // query head: the queries of one kv head are grouped ([B, Hkv, G, T, D]) and K, V [B, Hkv, 1, S, D]
  // broadcast over the group (a batched matmul over B * Hkv with G * T rows each).
  torch::Tensor qg = q.reshape({batch, kv_heads, group * count, dim});  // [B, Hkv, G*T, D]
  // bf16 products accumulate in fp32 and are rounded once, small ones too (LibTorch 1.13's batched
  // matmul did not, which needed a workaround here; LibTorch 2.15's does, docs/generation.md).
  torch::Tensor scores = torch::matmul(qg, k.transpose(2, 3)).view({batch, kv_heads, group, count, keys}) / scale_divisor;
  if (softcap > 0) scores = torch::tanh(scores / softcap) * softcap;  // HF's order: scale, cap, then mask
  if (bias.defined()) scores = scores + bias.view({kv_heads, group, count, keys}).to(scores.scalar_type());
  // allowed: [T, S] or [B, 1, T, S] -> broadcast over [B, Hkv, G, T, S].
  torch::Tensor blocked = allowed.logical_not();
  if (blocked.dim() == 4) blocked = blocked.unsqueeze(2);
  scores = scores.masked_fill(blocked, -std::numeric_limits<double>::infinity());
  torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type());
  torch::Tensor out = torch::matmul(probs.view({batch, kv_heads, group * count, keys}), v);  // [B, Hkv, G*T, D]
  return out.view({batch, q_heads, count, dim});
}

torch::Tensor AttentionImpl::local_alibi_bias(const torch::Tensor& q, int64_t keys) const {
  if (!alibi_slopes_.defined()) return torch::Tensor();
  const int64_t heads = q.size(1);
  check(alibi_head_offset >= 0 && alibi_head_offset + heads <= alibi_slopes_.size(0),
        "attention layer {}: ALiBi heads {}..{} of {}", layer_index_, alibi_head_offset,
        alibi_head_offset + heads - 1, alibi_slopes_.size(0));
  torch::Tensor slopes = alibi_slopes_.narrow(0, alibi_head_offset, heads).to(q.device());
  return alibi_bias(slopes, q.size(2), keys);  // fp32 [H, T, S]
}

torch::Tensor AttentionImpl::explicit_attention(const torch::Tensor& q, torch::Tensor k, torch::Tensor v,
                                                const torch::Tensor& mask) const {
  const int64_t count = q.size(2), keys = k.size(2);
  torch::Tensor allowed = mask.defined() ? mask : causal_mask(keys - count, count, 0, q.device());
  const double divisor = attention_scale_ > 0 ? 1.0 / attention_scale_ : std::sqrt(static_cast<double>(head_dim_));
  return grouped_attention_products(q, k, v, allowed, divisor, softcap_, local_alibi_bias(q, keys));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const LayerInputs& inputs) {
  torch::Tensor q = project_heads("q_proj", x, whole_qk_norm_ ? q_norm_ : Norm(nullptr));
  torch::Tensor k = project_heads("k_proj", x, whole_qk_norm_ ? k_norm_ : Norm(nullptr));
  torch::Tensor v = project_heads("v_proj", x);
  if (clip_qkv_ > 0) {  // olmo: the projections clamped before RoPE (and per-head norms; olmoe: after its whole q/k norms, as HF)
    q = q.clamp(-clip_qkv_, clip_qkv_);
    k = k.clamp(-clip_qkv_, clip_qkv_);
    v = v.clamp(-clip_qkv_, clip_qkv_);
  }
  if (q_norm_ && !whole_qk_norm_) {  // per head, over head_dim, before RoPE
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  if (q_layernorm_) {  // per head, each its own weights, before RoPE
    q = q_layernorm_->forward(q);
    k = k_layernorm_->forward(k);
  }
  if (rope_) {
    q = apply_rope(q, inputs.rope, rope_interleaved_);
    k = apply_rope(k, inputs.rope, rope_interleaved_);
  }
  if (inputs.cache) std::tie(k, v) = inputs.cache->update(layer_index_, k, v);  // [B, Hkv, S, D]
  const int64_t q_heads = q.size(1), kv_heads = k.size(1), count = q.size(2);
  check(q_heads % kv_heads == 0, "attention layer {}: {} query heads for {} kv heads", layer_index_,
        q_heads, kv_heads);
  check(inputs.mask.defined() || count == 1 || count == k.size(2),
        "attention layer {}: {} queries over {} keys need a mask", layer_index_, count, k.size(2));
  torch::Tensor out;
  const double scale = attention_scale_ > 0 ? attention_scale_ : 1.0 / std::sqrt(static_cast<double>(head_dim_));
  // The fused kernel has no soft-cap: capped scores always take the explicit path.
  const bool fused = inputs.kernel == AttentionKernel::Fused && softcap_ == 0;
  if (fused && count == 1 && !alibi_slopes_.defined() &&
      kernels::decode_attention_supported(q, k, v, inputs.mask)) {
    // A decode step on the CPU: one query per sequence over the cache, read in place.
    out = kernels::decode_attention(q, k, v, scale, inputs.mask);
  } else if (fused) {
    // enable_gqa lets query head h read kv head h / (q_heads / kv_heads) in place: no repeated
    // copy of K and V (the CPU flash kernel indexes the shared head).
    std::optional<torch::Tensor> mask;
    if (inputs.mask.defined()) mask = inputs.mask;
    bool causal = !inputs.mask.defined() && count > 1;
    if (alibi_slopes_.defined()) {
      // ALiBi: the bias goes in as a float mask (-inf where the bool mask blocks), in q's dtype as
      // HF adds it in the model's dtype; [H, T, S] or [B, H, T, S] with a per-row mask.
      const int64_t keys = k.size(2);
      torch::Tensor allowed = inputs.mask.defined() ? inputs.mask : causal_mask(keys - count, count, 0, q.device());
      mask = local_alibi_bias(q, keys)
                 .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity())
                 .to(q.scalar_type());
      causal = false;
    }
    std::optional<double> given_scale;
    if (attention_scale_ > 0) given_scale = attention_scale_;
    out = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0,
                                           /*is_causal=*/causal,
                                           /*scale=*/given_scale, /*enable_gqa=*/kv_heads != q_heads);
  } else {
    out = explicit_attention(q, k, v, inputs.mask);
  }
  out = out.transpose(1, 2).reshape({q.size(0), count, q_heads * head_dim_});  // [B, T, H*D]
  return call_child(*this, "o_proj", out);
}

}  // namespace forma
