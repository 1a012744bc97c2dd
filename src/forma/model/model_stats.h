// Size arithmetic from a config alone (no weights): parameter counts, FLOPs per token and memory
// estimates. The trainer uses training_flops_per_token for MFU; `forma model info` prints these.
#pragma once
#include <cstdint>

#include "forma/model/config.h"

namespace forma {

struct ParameterCounts {
  int64_t total = 0;      // every parameter (a tied lm_head counted once)
  int64_t active = 0;     // used per token: MoE counts num_experts_per_tok experts, not all
  int64_t embedding = 0;  // lookup tables (token and learned position embeddings)
  // Weights that take part in a matrix product per token: active minus the lookup tables plus the
  // output projection (the embedding again when tied). This is the N of the 6N rule.
  int64_t matmul_active = 0;
};

ParameterCounts count_parameters(const ModelConfig& config);

// Training FLOPs per token at `seq_len`: 6 * N + 12 * L * (heads * head_dim) * T (PaLM appendix B,
// the attention score and value products over a full T x T window).
double training_flops_per_token(const ModelConfig& config, int64_t seq_len);
// Inference (forward only): 2 * N + 4 * L * (heads * head_dim) * T.
double inference_flops_per_token(const ModelConfig& config, int64_t seq_len);

// Training memory for AdamW, activations excluded. fp32: weights, grads and two moments in fp32
// (16 bytes/param). bf16: bf16 weights and grads, fp32 moments and an fp32 master copy (16 bytes).
struct TrainingMemory {
  double weights = 0, gradients = 0, adam_moments = 0, master_weights = 0;
  double total() const { return weights + gradients + adam_moments + master_weights; }
};
TrainingMemory training_memory(const ModelConfig& config, bool bf16);

// K and V of every layer for `batch` sequences of `seq_len` positions.
double kv_cache_bytes(const ModelConfig& config, int64_t batch, int64_t seq_len, int bytes_per_value);
// Weights plus KV cache, both stored with `bytes_per_value` (4 fp32, 2 bf16).
double inference_memory(const ModelConfig& config, int64_t batch, int64_t seq_len, int bytes_per_value);

}  // namespace forma
