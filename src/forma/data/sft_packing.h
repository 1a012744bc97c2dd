// How SFT samples are laid out in the fixed-width rows of training batches.
//   packing: several whole samples per row of `capacity` tokens, by best-fit decreasing (each sample
//            goes into the fullest row it still fits in, longest samples first), so rows are nearly
//            full; the trainer gives each sample its own positions and a block-diagonal mask, so
//            packed samples do not see each other (model/causal_lm.h, PackedPositions).
//   padding: one sample per row; a batch is padded to its longest row.
// A sample longer than `capacity` is cut to its first `capacity` tokens (counted as truncated).
// The layout is a pure function of the lengths and their order, so resume finds the same rows.
#pragma once
#include <cstdint>
#include <vector>

namespace forma::data {

struct SftRow {
  std::vector<int64_t> samples;  // indices into the caller's sample list, in row order
  int64_t tokens = 0;            // tokens used (after truncation)
};

struct SftLayout {
  std::vector<SftRow> rows;
  int64_t truncated = 0;   // samples cut to capacity
  int64_t tokens = 0;      // tokens placed
  // tokens / (rows * capacity): the share of row slots holding real tokens (padding mode: of the
  // full-width rows; batches padded to their longest row waste less).
  double efficiency(int64_t capacity) const;
};

// `lengths[i]`: tokens of sample i (>= 1). The rows come out in the order their first sample was
// placed.
SftLayout layout_samples(const std::vector<int64_t>& lengths, int64_t capacity, bool packing);

}  // namespace forma::data
