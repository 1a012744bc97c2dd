// Multi-head causal self-attention with grouped/multi-query kv heads, RoPE or none, an optional
// sliding window (through the mask) and an optional KV cache. Eager math, as HF's "eager" path.
// Head counts come from the local projection outputs (q width / head_dim), so a layer whose
// projections were swapped for tensor-parallel shards computes its local heads unchanged.
#pragma once
#include <torch/torch.h>

#include "forma/model/architecture.h"
#include "forma/model/kv_cache.h"
#include "forma/model/rope.h"

namespace forma {

// What every layer of one forward call shares.
struct LayerInputs {
  RopeTables rope;     // undefined tensors for learned positions
  torch::Tensor mask;  // [T, S] or [B, 1, T, S] additive: 0 where query i may see key j, else -inf
  KVCache* cache = nullptr;
};

// Additive causal mask for queries at positions start..start+T-1 over keys 0..start+T-1:
// query i sees key j iff j <= i and (window == 0 or j > i - window).
torch::Tensor causal_mask(int64_t start, int64_t count, int64_t window, const torch::Device& device);

// The causal mask of left-padded batch rows (see kv_cache.h), [B, 1, T, S]: row b's query i also
// needs j >= left_padding[b], so no real token sees padding. A padding query sees itself only, so
// that no softmax row is all -inf (that would be NaN, and NaN values times weight 0 would still
// reach the real tokens through the cache).
torch::Tensor padded_causal_mask(int64_t start, int64_t count, int64_t window,
                                 const torch::Tensor& left_padding);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& config, const Architecture& arch, int64_t layer_index);
  // x [B, T, C] -> [B, T, C]
  torch::Tensor forward(const torch::Tensor& x, const LayerInputs& inputs);

 private:
  torch::Tensor project_heads(const char* name, const torch::Tensor& x);  // -> [B, H, T, D]
  int64_t head_dim_;
  int64_t layer_index_;
  bool rope_;
};
TORCH_MODULE(Attention);

}  // namespace forma
