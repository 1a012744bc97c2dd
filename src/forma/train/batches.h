// Where training and validation batches come from: the prepared datasets (data/sequences.h), or
// random tokens for benchmarks. Batches are addressed by sample index, so the data cursor in a
// checkpoint is one integer and resume reads exactly the samples the uninterrupted run would.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "forma/data/sequences.h"

namespace forma::train {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual void get(int64_t index, int32_t* out) const = 0;  // seq_len + 1 ids
  virtual int64_t size() const = 0;                          // samples per epoch
};

std::unique_ptr<SampleSource> dataset_samples(std::unique_ptr<data::TokenSequences> sequences);
// Uniform random ids below vocab_size; sample i depends only on (seed, i).
std::unique_ptr<SampleSource> random_samples(int64_t vocab_size, int64_t seq_len, uint64_t seed);

struct Batch {
  torch::Tensor inputs;   // [B, T] int64
  torch::Tensor targets;  // [B, T] int64: inputs shifted by one
};

// Samples first .. first + batch_size - 1 of `source`.
Batch make_batch(const SampleSource& source, int64_t first, int64_t batch_size, int64_t seq_len);

}  // namespace forma::train
