#include "forma/serve/paged_kv.h"

#include <algorithm>

#include "forma/core/error.h"

namespace forma::serve {

namespace {
torch::Tensor paged_index(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::kLong).to(device);
}
}  // namespace

PagedKV::PagedKV(const ModelConfig& config, int64_t num_blocks, int64_t block_size, torch::ScalarType dtype,
                 torch::Device device)
    : block_size_(block_size), device_(device) {
  // Multi-head latent attention caches every head's up-projected k (nope + rope dims) and v, whose
  // widths differ (mla_attention.h); other attention caches kv heads of head_dim.
  const bool latent = config.kv_lora_rank > 0;
  const int64_t heads = latent ? config.num_attention_heads : config.num_key_value_heads;
  const int64_t key_dim = latent ? config.qk_nope_head_dim + config.head_dim : config.head_dim;
  const int64_t value_dim = latent ? config.v_head_dim : config.head_dim;
  check(heads > 0 && key_dim > 0 && value_dim > 0, "KV cache: the model config has {} kv heads of size {} (k) and {} (v)",
        heads, key_dim, value_dim);
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    // Uninitialized, so that on the CPU the pages of a large pool are only committed as blocks are
    // first written; slot 0 is zeroed because padding positions read it, and even masked-out
    // values must be finite (a NaN times attention weight 0 is NaN). Every other slot is written
    // before it is read (the engine tests pass with the rest of the pool filled with NaN).
    keys_.push_back(torch::empty({num_blocks * block_size, heads, key_dim}, options));
    values_.push_back(torch::empty({num_blocks * block_size, heads, value_dim}, options));
    keys_.back().narrow(0, 0, 1).zero_();
    values_.back().narrow(0, 0, 1).zero_();
  }
}

KVCache PagedKV::gather(const std::vector<PagedRow>& rows, int64_t count) const {
  const auto batch = static_cast<int64_t>(rows.size());
  int64_t longest = 0;
  for (const PagedRow& row : rows) longest = std::max(longest, row.length);
  KVCache cache(static_cast<int64_t>(keys_.size()), longest + count);
  std::vector<int64_t> padding(batch), slots(batch * longest, 0);
  for (int64_t b = 0; b < batch; ++b) {
    const PagedRow& row = rows[b];
    padding[b] = longest - row.length;
    for (int64_t p = 0; p < row.length; ++p) {
      slots[b * longest + padding[b] + p] = (*row.blocks)[p / block_size_] * block_size_ + p % block_size_;
    }
  }
  cache.set_left_padding(paged_index(padding, device_));
  if (longest == 0) return cache;
  torch::Tensor index = paged_index(slots, device_);
  for (size_t l = 0; l < keys_.size(); ++l) {
    // [B*S, H, D] -> [B, H, S, D]; update() copies it into the cache's own buffer.
    auto rows_of = [&](const torch::Tensor& pool) {
      return pool.index_select(0, index).view({batch, longest, pool.size(1), pool.size(2)}).permute({0, 2, 1, 3});
    };
    cache.update(static_cast<int64_t>(l), rows_of(keys_[l]), rows_of(values_[l]));
  }
  cache.advance(longest);
  return cache;
}

void PagedKV::scatter(KVCache& cache, const std::vector<PagedRow>& rows, int64_t count) {
  const auto batch = static_cast<int64_t>(rows.size());
  const int64_t start = cache.length() - count;
  check(start >= 0, "KV cache: {} new positions in a cache of {}", count, cache.length());
  std::vector<int64_t> slots;
  for (const PagedRow& row : rows) {
    for (int64_t p = row.length; p < row.length + count; ++p) {
      const auto block = p / block_size_;
      check(block < static_cast<int64_t>(row.blocks->size()), "KV cache: position {} has no block", p);
      slots.push_back((*row.blocks)[block] * block_size_ + p % block_size_);
    }
  }
  torch::Tensor index = paged_index(slots, device_);
  for (size_t l = 0; l < keys_.size(); ++l) {
    // A zero-length update returns the cache's views of every position without writing.
    auto none = [batch](const torch::Tensor& pool) { return pool.new_empty({batch, pool.size(1), 0, pool.size(2)}); };
    auto [k, v] = cache.update(static_cast<int64_t>(l), none(keys_[l]), none(values_[l]));
    auto appended = [&](const torch::Tensor& t) {  // [B, H, S, D] -> [B*count, H, D]
      return t.narrow(2, start, count).permute({0, 2, 1, 3}).reshape({batch * count, t.size(1), t.size(3)});
    };
    keys_[l].index_copy_(0, index, appended(k));
    values_[l].index_copy_(0, index, appended(v));
  }
}

}  // namespace forma::serve
