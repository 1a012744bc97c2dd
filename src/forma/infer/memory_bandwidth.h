// What a decode step must read, and how fast this machine can read it: the denominators of the
// bandwidth figures of `forma bench generate` (docs/generation.md#benchmark-forma-bench-generate).
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "forma/model/causal_lm.h"

namespace forma::infer {

// Bytes of weights one forward step over `rows` tokens (one per batch row) reads: every parameter
// once (the output projection once even when tied to the embedding), except the embedding table,
// of which only the rows' `rows` embeddings are read (or the whole table when it is also the output
// projection).
int64_t weight_bytes_per_step(CausalLM& model, int64_t rows);

// Read bandwidth of this machine in bytes/s: the best of `reps` timed sums of a buffer of
// `buffer_bytes` (make it several times the last-level cache) in host memory, each of LibTorch's
// intra-op threads (the pool that runs the model) reading one contiguous slice, after one untimed
// pass.
double measure_read_bandwidth(int64_t buffer_bytes, int reps = 5);

}  // namespace forma::infer
