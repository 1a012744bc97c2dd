// One dataset's split as packed samples (see sequences.h for the rules), plus the document split.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "forma/data/indexed_dataset.h"
#include "forma/data/sequences.h"

namespace forma::data {

struct DocumentSplit {
  std::vector<int64_t> train, valid;  // document ids, ascending
};

// Holds out round(valid_fraction * documents) documents (>= 1 if valid_fraction > 0, < documents)
// chosen by a permutation seeded from `seed`.
DocumentSplit split_documents(int64_t documents, double valid_fraction, uint64_t seed);

class PackedSequences : public TokenSequences {
 public:
  // documents: the document ids whose tokens form the stream, in stream order.
  // shuffle: visit samples in a per-epoch permutation seeded from `seed`; else in stream order.
  PackedSequences(std::shared_ptr<const IndexedDataset> dataset, const std::vector<int64_t>& documents,
                  int seq_len, bool shuffle, uint64_t seed, int64_t vocab_size = 0);

  int64_t size() const override { return samples_; }
  int seq_len() const override { return seq_len_; }
  void get(int64_t index, int32_t* out) const override;

  int64_t stream_tokens() const { return piece_starts_.back(); }
  // Sample at position `position` of epoch `epoch`'s order (position < size()).
  int64_t sample_at(int64_t epoch, int64_t position) const;
  // Copies stream tokens [begin, begin + count) into out.
  void read_stream(int64_t begin, int64_t count, int32_t* out) const;

 private:
  std::shared_ptr<const std::vector<int64_t>> order_for_epoch(int64_t epoch) const;
  // Stops on the first id of piece `piece` (tokens [offset, offset + count), read into ids) that is
  // not below vocab_size_, naming the document and the id's position in it.
  void check_ids(size_t piece, int64_t offset, int64_t count, const int32_t* ids) const;

  std::shared_ptr<const IndexedDataset> dataset_;
  std::vector<int64_t> pieces_;        // sequence ids of the stream, in order
  std::vector<int64_t> piece_starts_;  // stream offset of each piece, plus the total at the end
  int seq_len_;
  int64_t vocab_size_;
  int64_t samples_ = 0;
  bool shuffle_;
  uint64_t seed_;
  // The permutation of the most recent epoch asked for: the trainer reads epochs in turn, so one
  // cached epoch (two while a data loader straddles a boundary) costs one shuffle per epoch.
  mutable std::mutex cache_mutex_;
  mutable std::shared_ptr<const std::vector<int64_t>> cached_[2];
  mutable int64_t cached_epoch_[2] = {-1, -1};
};

}  // namespace forma::data
