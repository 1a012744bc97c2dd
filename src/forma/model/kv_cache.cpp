#include "forma/model/kv_cache.h"

#include <algorithm>

#include "forma/core/error.h"
#include "forma/model/config.h"

namespace forma {

KVCache::KVCache(int64_t num_layers, int64_t max_length)
    : max_length_(max_length), keys_(num_layers), values_(num_layers) {
  check(num_layers > 0 && max_length > 0, "KVCache needs positive layers ({}) and length ({})",
        num_layers, max_length);
}

KVCache::KVCache(const ModelConfig& config, int64_t max_length)
    : KVCache(config.num_hidden_layers, max_length) {}

std::pair<torch::Tensor, torch::Tensor> KVCache::update(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  check(layer >= 0 && layer < num_layers(), "KVCache: layer {} out of range 0..{}", layer,
        num_layers() - 1);
  const int64_t count = k.size(2);
  check(length_ + count <= max_length_, "KVCache: {} cached + {} new positions exceed the cache length {}",
        length_, count, max_length_);
  torch::Tensor& K = keys_[layer];
  torch::Tensor& V = values_[layer];
  if (!K.defined() || K.size(0) != k.size(0) || K.size(1) != k.size(1) || K.size(3) != k.size(3) ||
      K.scalar_type() != k.scalar_type()) {
    check(length_ == 0, "KVCache: layer {} received keys of a different shape mid-sequence", layer);
    // [B, kv_heads, S_max, D]
    K = torch::zeros({k.size(0), k.size(1), max_length_, k.size(3)}, k.options());
    V = torch::zeros({v.size(0), v.size(1), max_length_, v.size(3)}, v.options());
  }
  K.narrow(2, length_, count).copy_(k);
  V.narrow(2, length_, count).copy_(v);
  return {K.narrow(2, 0, length_ + count), V.narrow(2, 0, length_ + count)};
}

void KVCache::advance(int64_t count) {
  check(length_ + count <= max_length_, "KVCache: advance past the cache length {}", max_length_);
  length_ += count;
}

void KVCache::truncate(int64_t length) {
  check(length >= 0 && length <= length_, "KVCache: cannot truncate {} positions to {}", length_, length);
  length_ = length;
}

void KVCache::set_left_padding(const torch::Tensor& left_padding) {
  check(length_ == 0, "KVCache: the left padding is set before the first forward call");
  check(left_padding.dim() == 1 && left_padding.scalar_type() == torch::kInt64,
        "KVCache: left padding must be an int64 vector [B]");
  left_padding_ = left_padding;
  has_padding_ = left_padding.numel() > 0 && left_padding.max().item<int64_t>() > 0;
}

void KVCache::select_rows(const torch::Tensor& rows) {
  check(rows.dim() == 1 && rows.numel() > 0, "KVCache: select_rows needs a non-empty index vector");
  int64_t shared_padding = 0;
  if (left_padding_.defined()) {
    left_padding_ = left_padding_.index_select(0, rows.to(left_padding_.device()));
    shared_padding = std::min(left_padding_.min().item<int64_t>(), length_);
    left_padding_ = left_padding_ - shared_padding;
    has_padding_ = left_padding_.max().item<int64_t>() > 0;
  }
  for (auto* tensors : {&keys_, &values_}) {
    for (torch::Tensor& t : *tensors) {
      if (!t.defined()) continue;
      // [B, kv_heads, S_max, D]: the kept rows, positions from the first one that is not padding
      // everywhere; contiguous copies so the dropped rows' memory is released.
      t = t.index_select(0, rows.to(t.device())).narrow(2, shared_padding, max_length_ - shared_padding).contiguous();
    }
  }
  length_ -= shared_padding;
  max_length_ -= shared_padding;
}

}  // namespace forma
