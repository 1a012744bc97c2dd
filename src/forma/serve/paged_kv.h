// The paged KV cache's storage: per layer, K and V for every slot of every block,
// [num_blocks * block_size, kv_heads, head_dim] (slot s = block * block_size + offset; multi-head
// latent attention: every head, k of qk_nope_head_dim + qk_rope_head_dim, v of v_head_dim), plus the
// two copies that let the unchanged model attention code run over it:
//   gather()  builds a contiguous, left-padded model::KVCache for a batch of sequences from their
//             block tables (row b right-aligned, left padding = longest - own length), with room
//             for `count` new positions;
//   scatter() writes the `count` positions a forward appended to that cache back into the
//             sequences' blocks.
// This costs a copy of the batch's KV per forward (twice: the gather, then KVCache::update's copy
// into its own buffer) on top of attention itself; a fused paged-attention kernel that reads the
// blocks in place is future work. It buys reuse of the tested attention, RoPE, learned-position
// and sliding-window code paths (model positions and masks come from the left padding).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "forma/model/config.h"
#include "forma/model/kv_cache.h"

namespace forma::serve {

// One batch row: its block table and how many of its positions hold KV.
struct PagedRow {
  const std::vector<int32_t>* blocks = nullptr;
  int64_t length = 0;
};

class PagedKV {
 public:
  PagedKV(const ModelConfig& config, int64_t num_blocks, int64_t block_size, torch::ScalarType dtype,
          torch::Device device);

  // A cache holding each row's `length` positions, left-padded to the longest, with room for
  // `count` more (the next forward's tokens).
  KVCache gather(const std::vector<PagedRow>& rows, int64_t count) const;
  // Copies the `count` positions the forward appended to `cache` (built by gather for `rows`) to
  // slots length..length+count-1 of each row's blocks (which must already be allocated).
  void scatter(KVCache& cache, const std::vector<PagedRow>& rows, int64_t count);

 private:
  int64_t block_size_;
  torch::Device device_;
  std::vector<torch::Tensor> keys_, values_;  // per layer [slots, kv_heads, head_dim] (MLA: k and v widths differ)
};

}  // namespace forma::serve
