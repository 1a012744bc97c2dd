// What a decode step must read: with the machine's read bandwidth (kernels/bandwidth.h), the
// figures of `forma bench generate` (docs/generation.md#benchmark-forma-bench-generate).
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

}  // namespace forma::infer
