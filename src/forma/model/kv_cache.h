// Key/value cache for incremental decoding: per layer K and V [B, kv_heads, S_max, D], allocated
// on a layer's first update from the shapes of the keys it receives (so a tensor-parallel layer
// with fewer local kv heads gets a matching cache). A forward call appends T positions to every
// layer at length().., then advance(T) makes them visible.
//
// Batches of sequences with different lengths (infer/batch_generate.h) are left-padded: row b's
// tokens start at cache position left_padding[b], the positions before are padding that no query
// attends to, and a token's model position is its cache position minus its row's padding. Left
// padding keeps one shared length for every row, so each forward call appends at the same place in
// every row and the last position holds every row's next-token logits.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace forma {

struct ModelConfig;

class KVCache {
 public:
  KVCache(int64_t num_layers, int64_t max_length);
  KVCache(const ModelConfig& config, int64_t max_length);

  int64_t length() const { return length_; }
  int64_t max_length() const { return max_length_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }

  // Writes k, v [B, kv_heads, T, D] at positions length()..length()+T-1 of `layer` and returns the
  // cached K and V of positions 0..length()+T-1 (views, [B, kv_heads, length()+T, D]).
  std::pair<torch::Tensor, torch::Tensor> update(int64_t layer, const torch::Tensor& k,
                                                 const torch::Tensor& v);
  // Commits the T positions written by the last forward call.
  void advance(int64_t count);
  // Forgets every position (keeps the memory).
  void reset() { length_ = 0; }
  // Drops positions beyond `length` (e.g. to rewind after speculative tokens).
  void truncate(int64_t length);

  // Per-row left padding (int64 [B], before the first forward call); undefined = no padding.
  void set_left_padding(const torch::Tensor& left_padding);
  const torch::Tensor& left_padding() const { return left_padding_; }
  // Whether some row has left padding (false without padding, or when every row's is 0: then the
  // rows share their positions and plain causal attention, and a decode step needs no mask).
  bool has_padding() const { return has_padding_; }
  // Keeps only the batch rows `rows` (int64 indices, in the new order) of every layer and of the
  // padding, e.g. to drop finished sequences, then drops the leading positions that are padding
  // in every kept row (length() and the paddings shrink by as much; model positions are unchanged).
  void select_rows(const torch::Tensor& rows);

 private:
  int64_t max_length_;
  int64_t length_ = 0;
  std::vector<torch::Tensor> keys_, values_;
  torch::Tensor left_padding_;
  bool has_padding_ = false;
};

}  // namespace forma
