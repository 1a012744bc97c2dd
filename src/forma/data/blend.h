// Blending of several sample sources by weight, as Megatron's build_blending_indices does: sample i
// comes from the source whose realised count lags weight * i the most (ties: the first source).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "forma/data/sequences.h"

namespace forma::data {

struct BlendIndex {
  std::vector<uint16_t> source;       // source of each blended sample
  std::vector<int64_t> source_index;  // its index within that source
  std::vector<int64_t> counts;        // samples per source after the last one (the greedy's state)
};

// Normalised weights; forma::Error unless 1..65535 positive finite weights.
std::vector<double> normalise_weights(const std::vector<double>& weights);

// Runs the greedy for blended samples [first, first + size), starting from `counts` (the samples
// each source received before `first`). build_blend_index(w, n) = run_blend(normalised w, 0, 0s, n).
BlendIndex run_blend(const std::vector<double>& shares, int64_t first, std::vector<int64_t> counts,
                     int64_t size);
BlendIndex build_blend_index(const std::vector<double>& weights, int64_t size);

// The blend of `sources` (all of one seq_len). size() = `size` samples per blend epoch, but the
// greedy does not restart at an epoch boundary: index i is sample i of one endless blend, computed
// one epoch-sized chunk at a time (repeating one epoch's table would let the rounding of every
// epoch add up). A source asked for more samples than it has continues into its own next epochs.
class BlendedSequences : public TokenSequences {
 public:
  BlendedSequences(std::vector<std::unique_ptr<TokenSequences>> sources, const std::vector<double>& weights,
                   int64_t size);
  int64_t size() const override { return size_; }
  int seq_len() const override { return sources_.front()->seq_len(); }
  void get(int64_t index, int32_t* out) const override;

 private:
  std::shared_ptr<const BlendIndex> chunk(int64_t epoch) const;

  std::vector<std::unique_ptr<TokenSequences>> sources_;
  std::vector<double> shares_;
  int64_t size_;
  mutable std::mutex mutex_;
  mutable std::vector<std::vector<int64_t>> chunk_start_counts_;  // per blend epoch computed so far
  mutable std::shared_ptr<const BlendIndex> cached_[2];           // the two most recent chunks
  mutable int64_t cached_epoch_[2] = {-1, -1};
};

}  // namespace forma::data
