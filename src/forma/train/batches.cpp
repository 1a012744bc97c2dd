#include "forma/train/batches.h"

#include <random>

namespace forma::train {
namespace {

class DatasetSamples : public SampleSource {
 public:
  explicit DatasetSamples(std::unique_ptr<data::TokenSequences> seq) : seq_(std::move(seq)) {}
  void get(int64_t index, int32_t* out) const override { seq_->get(index, out); }
  int64_t size() const override { return seq_->size(); }

 private:
  std::unique_ptr<data::TokenSequences> seq_;
};

class RandomSamples : public SampleSource {
 public:
  RandomSamples(int64_t vocab, int64_t seq_len, uint64_t seed) : vocab_(vocab), seq_len_(seq_len), seed_(seed) {}
  void get(int64_t index, int32_t* out) const override {
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index));
    for (int64_t i = 0; i <= seq_len_; ++i) out[i] = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab_));
  }
  int64_t size() const override { return INT64_MAX / 2; }

 private:
  int64_t vocab_, seq_len_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<SampleSource> dataset_samples(std::unique_ptr<data::TokenSequences> sequences) {
  return std::make_unique<DatasetSamples>(std::move(sequences));
}

std::unique_ptr<SampleSource> random_samples(int64_t vocab_size, int64_t seq_len, uint64_t seed) {
  return std::make_unique<RandomSamples>(vocab_size, seq_len, seed);
}

Batch make_batch(const SampleSource& source, int64_t first, int64_t batch_size, int64_t seq_len) {
  return source.batch(first, batch_size, seq_len);
}

Batch SampleSource::batch(int64_t first, int64_t batch_size, int64_t seq_len) const {
  const SampleSource& source = *this;
  // [B, T+1] ids as read, then inputs = [:, 0:T] and targets = [:, 1:T+1].
  auto ids = torch::empty({batch_size, seq_len + 1}, torch::kInt32);
  for (int64_t b = 0; b < batch_size; ++b) source.get(first + b, ids[b].data_ptr<int32_t>());
  auto wide = ids.to(torch::kInt64);
  Batch out;
  out.inputs = wide.slice(1, 0, seq_len).contiguous();
  out.targets = wide.slice(1, 1, seq_len + 1).contiguous();
  return out;
}

Batch pad_batch_width(Batch batch, int64_t multiple) {
  const int64_t width = batch.inputs.size(1);
  const int64_t extra = (multiple - width % multiple) % multiple;
  if (extra == 0) return batch;
  auto widen = [extra](const torch::Tensor& t, int64_t value) {
    return t.defined() ? torch::constant_pad_nd(t, {0, extra}, value) : t;
  };
  batch.inputs = widen(batch.inputs, 0);
  batch.targets = widen(batch.targets, -100);
  batch.position_ids = widen(batch.position_ids, 0);
  batch.segment_ids = widen(batch.segment_ids, -1);
  return batch;
}

}  // namespace forma::train
