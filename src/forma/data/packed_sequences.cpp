#include "forma/data/packed_sequences.h"

#include <algorithm>
#include <cmath>

#include "forma/core/error.h"
#include "forma/data/shuffle.h"

namespace forma::data {

namespace {
constexpr uint64_t kValidStream = 0x76616C6964;   // "valid"
constexpr uint64_t kOrderStream = 0x6F72646572;   // "order"
}  // namespace

DocumentSplit split_documents(int64_t documents, double valid_fraction, uint64_t seed) {
  check(valid_fraction >= 0.0 && valid_fraction < 1.0, "valid_fraction {} is not in [0, 1)",
        valid_fraction);
  auto held_out = static_cast<int64_t>(std::llround(valid_fraction * static_cast<double>(documents)));
  if (valid_fraction > 0.0) held_out = std::max<int64_t>(held_out, 1);
  held_out = std::min(held_out, documents - 1);
  DocumentSplit split;
  if (held_out <= 0) {
    split.train.resize(static_cast<size_t>(std::max<int64_t>(documents, 0)));
    for (int64_t d = 0; d < documents; ++d) split.train[static_cast<size_t>(d)] = d;
    return split;
  }
  std::vector<int64_t> order = shuffled_range(documents, derive_seed(seed, kValidStream));
  split.valid.assign(order.begin(), order.begin() + held_out);
  split.train.assign(order.begin() + held_out, order.end());
  std::sort(split.valid.begin(), split.valid.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

PackedSequences::PackedSequences(std::shared_ptr<const IndexedDataset> dataset,
                                 const std::vector<int64_t>& documents, int seq_len, bool shuffle,
                                 uint64_t seed, int64_t vocab_size)
    : dataset_(std::move(dataset)), seq_len_(seq_len), vocab_size_(vocab_size), shuffle_(shuffle), seed_(seed) {
  check(seq_len >= 1, "seq_len must be at least 1, not {}", seq_len);
  piece_starts_.push_back(0);
  for (int64_t d : documents) {
    for (int64_t s = dataset_->document_begin(d), end = dataset_->document_begin(d + 1); s < end; ++s) {
      int32_t length = dataset_->sequence_length(s);
      if (length == 0) continue;  // keeps every piece non-empty for the binary search in read_stream
      pieces_.push_back(s);
      piece_starts_.push_back(piece_starts_.back() + length);
    }
  }
  int64_t tokens = piece_starts_.back();
  samples_ = tokens > seq_len ? (tokens - 1) / seq_len : 0;
}

void PackedSequences::read_stream(int64_t begin, int64_t count, int32_t* out) const {
  check(begin >= 0 && count >= 0 && begin + count <= stream_tokens(),
        "{}: stream tokens [{}, {}) out of range ({} tokens)", dataset_->prefix(), begin, begin + count,
        stream_tokens());
  // The piece holding `begin`: the last start <= begin.
  auto it = std::upper_bound(piece_starts_.begin(), piece_starts_.end(), begin);
  auto piece = static_cast<size_t>(it - piece_starts_.begin() - 1);
  while (count > 0) {
    int64_t offset = begin - piece_starts_[piece];
    int64_t take = std::min(count, piece_starts_[piece + 1] - begin);
    dataset_->read(pieces_[piece], offset, take, out);
    if (vocab_size_ > 0) check_ids(piece, offset, take, out);
    out += take;
    begin += take;
    count -= take;
    ++piece;
  }
}

void PackedSequences::check_ids(size_t piece, int64_t offset, int64_t count, const int32_t* ids) const {
  // One compare per token: nothing next to the model's forward pass, and a bad id never reaches
  // the embedding (where LibTorch would stop with "index out of range" and no checkpoint).
  int32_t bad_count = 0;
  for (int64_t i = 0; i < count; ++i) bad_count += (ids[i] < 0) | (ids[i] >= vocab_size_);
  if (bad_count == 0) return;
  int64_t i = 0;
  while (ids[i] >= 0 && ids[i] < vocab_size_) ++i;
  // The document holding sequence pieces_[piece], and the id's position within that document.
  const int64_t sequence = pieces_[piece];
  int64_t lo = 0, hi = dataset_->document_count();  // last document d with document_begin(d) <= sequence
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    (dataset_->document_begin(mid) <= sequence ? lo : hi) = mid;
  }
  int64_t position = offset + i;
  for (int64_t s = dataset_->document_begin(lo); s < sequence; ++s) position += dataset_->sequence_length(s);
  fail("{}: document {}, token {}: id {} is outside the model's vocabulary (ids 0..{}): was the data "
       "prepared with another tokenizer? (forma data info {} --tokenizer ... lists every such id)",
       dataset_->prefix(), lo, position, ids[i], vocab_size_ - 1, dataset_->prefix());
}

std::shared_ptr<const std::vector<int64_t>> PackedSequences::order_for_epoch(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  for (int k = 0; k < 2; ++k)
    if (cached_epoch_[k] == epoch) return cached_[k];
  // Replace the older epoch: the lower number, since epochs are read in increasing order.
  int slot = cached_epoch_[0] <= cached_epoch_[1] ? 0 : 1;
  auto seed = derive_seed(seed_, kOrderStream, static_cast<uint64_t>(epoch));
  cached_[slot] = std::make_shared<const std::vector<int64_t>>(shuffled_range(samples_, seed));
  cached_epoch_[slot] = epoch;
  return cached_[slot];
}

int64_t PackedSequences::sample_at(int64_t epoch, int64_t position) const {
  if (!shuffle_) return position;
  return (*order_for_epoch(epoch))[static_cast<size_t>(position)];
}

void PackedSequences::get(int64_t index, int32_t* out) const {
  check(samples_ > 0, "{}: no samples to read", dataset_->prefix());
  check(index >= 0, "{}: negative sample index {}", dataset_->prefix(), index);
  int64_t sample = sample_at(index / samples_, index % samples_);
  read_stream(sample * seq_len_, seq_len_ + 1, out);
}

}  // namespace forma::data
