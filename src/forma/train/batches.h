// Where training and validation batches come from: the prepared datasets (data/sequences.h), or
// random tokens for benchmarks. Batches are addressed by sample index, so the data cursor in a
// checkpoint is one integer and resume reads exactly the samples the uninterrupted run would.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "forma/data/sequences.h"

namespace forma::train {

struct Batch;

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual void get(int64_t index, int32_t* out) const = 0;  // seq_len + 1 ids
  virtual int64_t size() const = 0;                          // samples per epoch
  // Samples first .. first + batch_size - 1; by default seq_len + 1 ids each (get), shifted by one.
  virtual Batch batch(int64_t first, int64_t batch_size, int64_t seq_len) const;
  // Whether targets may be -100 (SFT loss masks): the trainer then divides the summed token losses
  // of a step by the number of trained tokens in it, not by the number of micro-batches.
  virtual bool masked() const { return false; }
};

std::unique_ptr<SampleSource> dataset_samples(std::unique_ptr<data::TokenSequences> sequences);
// Uniform random ids below vocab_size; sample i depends only on (seed, i).
std::unique_ptr<SampleSource> random_samples(int64_t vocab_size, int64_t seq_len, uint64_t seed);

struct Batch {
  torch::Tensor inputs;   // [B, T] int64
  torch::Tensor targets;  // [B, T] int64: inputs shifted by one; -100 where nothing is trained
  // SFT packing (several samples per row): positions within each sample and sample ids, [B, T]
  // int64 (model/causal_lm.h, PackedPositions). Undefined for plain rows.
  torch::Tensor position_ids, segment_ids;
};

// Samples first .. first + batch_size - 1 of `source` (source.batch()).
Batch make_batch(const SampleSource& source, int64_t first, int64_t batch_size, int64_t seq_len);

// The batch widened on the right to a multiple of `multiple` tokens (sequence parallelism splits
// the sequence evenly; SFT rows are as wide as the batch's longest): inputs 0, targets -100,
// positions 0 and segment -1 (a sample of its own). Causal attention keeps every real token's
// output the same, and nothing is trained on the padding. Unchanged when already a multiple.
Batch pad_batch_width(Batch batch, int64_t multiple);

}  // namespace forma::train
