#include "forma/data/blend.h"

#include <algorithm>
#include <limits>

#include "forma/core/error.h"

namespace forma::data {

std::vector<double> normalise_weights(const std::vector<double>& weights) {
  check(!weights.empty() && weights.size() <= std::numeric_limits<uint16_t>::max(),
        "blend: {} weights (need 1 to 65535)", weights.size());
  double total = 0;
  for (size_t k = 0; k < weights.size(); ++k) {
    check(weights[k] > 0 && weights[k] < std::numeric_limits<double>::infinity(),
          "blend: weight {} is {} (weights must be positive)", k, weights[k]);
    total += weights[k];
  }
  std::vector<double> shares(weights.size());
  for (size_t k = 0; k < weights.size(); ++k) shares[k] = weights[k] / total;
  return shares;
}

BlendIndex run_blend(const std::vector<double>& shares, int64_t first, std::vector<int64_t> counts,
                     int64_t size) {
  check(size >= 0, "blend: negative size {}", size);
  BlendIndex index;
  index.source.resize(static_cast<size_t>(size));
  index.source_index.resize(static_cast<size_t>(size));
  for (int64_t j = 0; j < size; ++j) {
    // Megatron uses max(i, 1) so that the first sample already goes to the heaviest source.
    double position = std::max<double>(static_cast<double>(first + j), 1.0);
    size_t best = 0;
    double best_lag = shares[0] * position - static_cast<double>(counts[0]);
    for (size_t k = 1; k < shares.size(); ++k) {
      double lag = shares[k] * position - static_cast<double>(counts[k]);
      if (lag > best_lag) best = k, best_lag = lag;
    }
    index.source[static_cast<size_t>(j)] = static_cast<uint16_t>(best);
    index.source_index[static_cast<size_t>(j)] = counts[best]++;
  }
  index.counts = std::move(counts);
  return index;
}

BlendIndex build_blend_index(const std::vector<double>& weights, int64_t size) {
  return run_blend(normalise_weights(weights), 0, std::vector<int64_t>(weights.size(), 0), size);
}

BlendedSequences::BlendedSequences(std::vector<std::unique_ptr<TokenSequences>> sources,
                                   const std::vector<double>& weights, int64_t size)
    : sources_(std::move(sources)), shares_(normalise_weights(weights)), size_(size) {
  check(!sources_.empty() && sources_.size() == weights.size(), "blend: {} sources but {} weights",
        sources_.size(), weights.size());
  for (const auto& source : sources_)
    check(source->seq_len() == sources_.front()->seq_len(), "blend: sources differ in seq_len");
  check(size > 0, "blend: the blend has no samples");
  chunk_start_counts_.emplace_back(sources_.size(), 0);
}

std::shared_ptr<const BlendIndex> BlendedSequences::chunk(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int k = 0; k < 2; ++k)
    if (cached_epoch_[k] == epoch) return cached_[k];
  // Walk forward from the last chunk whose starting state is known (one chunk per new epoch when
  // the trainer reads in order; a resume at epoch e walks e chunks once).
  std::shared_ptr<const BlendIndex> result;
  for (int64_t e = std::min<int64_t>(epoch, static_cast<int64_t>(chunk_start_counts_.size()) - 1);
       e <= epoch; ++e) {
    auto table = std::make_shared<const BlendIndex>(
        run_blend(shares_, e * size_, chunk_start_counts_[static_cast<size_t>(e)], size_));
    if (static_cast<int64_t>(chunk_start_counts_.size()) == e + 1) chunk_start_counts_.push_back(table->counts);
    result = table;
  }
  int slot = cached_epoch_[0] <= cached_epoch_[1] ? 0 : 1;
  cached_[slot] = result;
  cached_epoch_[slot] = epoch;
  return result;
}

void BlendedSequences::get(int64_t index, int32_t* out) const {
  check(index >= 0, "blend: negative sample index {}", index);
  auto table = chunk(index / size_);
  const auto position = static_cast<size_t>(index % size_);
  sources_[table->source[position]]->get(table->source_index[position], out);
}

}  // namespace forma::data
