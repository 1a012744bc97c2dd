// Multi-head causal self-attention with grouped/multi-query kv heads, RoPE, ALiBi or none, an optional
// sliding window (through the mask) and an optional KV cache. Computed by LibTorch's fused
// scaled_dot_product_attention (HF's "sdpa" path), or by the explicit math of HF's "eager" path.
// Head counts come from the local projection outputs (q width / head_dim), so a layer whose
// projections were swapped for tensor-parallel shards computes its local heads unchanged.
#pragma once
#include <torch/torch.h>

#include "forma/model/architecture.h"
#include "forma/model/kv_cache.h"
#include "forma/model/norm.h"
#include "forma/model/rope.h"

namespace forma {

// How attention is computed. Fused: at::scaled_dot_product_attention, whose flash kernels (CPU and
// CUDA) never hold the [T, S] scores, so memory grows with T instead of T^2. Explicit: scores =
// q k^T, masked, softmax in fp32, times v; the reference the fused path is tested against.
enum class AttentionKernel { Fused, Explicit };

// What every layer of one forward call shares.
struct LayerInputs {
  RopeTables rope;  // undefined tensors for learned positions
  // bool [T, S] or [B, 1, T, S], true where query i may see key j. Undefined for plain causal
  // attention over the whole sequence (T == S, or one query that sees every cached key): the fused
  // kernel then takes is_causal instead of a mask (no [T, S] tensor, and flash skips the masked
  // blocks).
  torch::Tensor mask;
  KVCache* cache = nullptr;
  AttentionKernel kernel = AttentionKernel::Fused;
};

// Whether queries at positions start..start+T-1 over keys 0..start+T-1 need an explicit mask: not
// when attention is plain causal (start 0, or a single query) and the window cuts nothing off.
bool needs_causal_mask(int64_t start, int64_t count, int64_t window);

// Causal mask for queries at positions start..start+T-1 over keys 0..start+T-1, bool [T, S]:
// query i sees key j iff j <= i and (window == 0 or j > i - window).
torch::Tensor causal_mask(int64_t start, int64_t count, int64_t window, const torch::Device& device);

// The causal mask of left-padded batch rows (see kv_cache.h), bool [B, 1, T, S]: row b's query i also
// needs j >= left_padding[b], so no real token sees padding. A padding query sees itself only, so
// that no row is all false (its softmax would be NaN, and NaN values times weight 0 would still
// reach the real tokens through the cache).
torch::Tensor padded_causal_mask(int64_t start, int64_t count, int64_t window,
                                 const torch::Tensor& left_padding);

// The mask of rows that pack several samples, bool [B, 1, T, T]: query i sees key j iff j <= i, both
// belong to the same sample (segment_ids [B, T]) and, with a window, j > i - window.
torch::Tensor packed_causal_mask(const torch::Tensor& segment_ids, int64_t window);

// The explicit attention products: q [B, H, T, D] over k, v [B, Hkv, S, D] (H a multiple of Hkv,
// query head h reads kv head h / (H / Hkv)), `allowed` bool [T, S] or [B, 1, T, S]; scores divided
// by `scale_divisor` (sqrt(D)), soft-capped when `softcap` > 0 (tanh(s / cap) * cap, before the
// mask), softmax in fp32, -> [B, H, T, D]. K and V are never repeated per query head. `bias`
// (optional, [H, T, S]) is added to the scaled (and capped) scores before the mask (ALiBi).
torch::Tensor grouped_attention_products(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& allowed, double scale_divisor, double softcap = 0.0,
                                         const torch::Tensor& bias = torch::Tensor());

// ALiBi's slope of each of `heads` heads, fp32 [heads], as HF's bloom builds them: a geometric
// series from 2^(-8/n) for the largest power of two n <= heads, the rest interleaved from 2n's.
torch::Tensor alibi_slopes(int64_t heads);

// The ALiBi bias of queries at positions S-T..S-1 over keys 0..S-1, fp32 [H, T, S]:
// slopes[h] * (j - i). Relative distances, so the same bias serves a KV cache, left padding
// (masked keys aside, distances do not change) and packed samples (attention stays within one).
torch::Tensor alibi_bias(const torch::Tensor& slopes, int64_t count, int64_t keys);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& config, const Architecture& arch, int64_t layer_index);
  // x [B, T, C] -> [B, T, C]
  torch::Tensor forward(const torch::Tensor& x, const LayerInputs& inputs);

  // ALiBi (config.alibi): the global index of this module's first query head. Tensor parallelism
  // sets it on each rank, whose heads then take their own slopes.
  int64_t alibi_head_offset = 0;

 private:
  // -> [B, H, T, D], the projection normed first by `whole_norm` when given (qk_norm_whole).
  torch::Tensor project_heads(const char* name, const torch::Tensor& x, Norm whole_norm = Norm(nullptr));
  // config.alibi: the bias of this module's heads for q [B, H, T, D] over `keys` keys, fp32
  // [H, T, S]; undefined without ALiBi.
  torch::Tensor local_alibi_bias(const torch::Tensor& q, int64_t keys) const;
  // q [B, H, T, D], k and v [B, Hkv, S, D] -> [B, H, T, D]
  torch::Tensor explicit_attention(const torch::Tensor& q, torch::Tensor k, torch::Tensor v,
                                   const torch::Tensor& mask) const;
  Norm q_norm_{nullptr}, k_norm_{nullptr};  // config.qk_norm (per head) or qk_norm_whole
  bool whole_qk_norm_ = false;
  HeadNorms q_layernorm_{nullptr}, k_layernorm_{nullptr};  // config.head_layernorm
  int64_t head_dim_;
  double attention_scale_;  // config.attention_scale (0: 1/sqrt(head_dim))
  double softcap_;          // config.attn_logit_softcapping: forces the explicit kernel
  int64_t layer_index_;
  bool rope_;
  bool rope_interleaved_;
  double clip_qkv_;         // config.clip_qkv (0: no clamp)
  torch::Tensor alibi_slopes_;  // config.alibi: fp32 [num_attention_heads] (all heads); else undefined
};
TORCH_MODULE(Attention);

}  // namespace forma
