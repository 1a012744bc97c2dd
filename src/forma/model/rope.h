// Rotary position embedding as HF computes it: inv_freq[i] = 1 / theta^(2i/D) in fp32, optionally
// rescaled ("linear": / factor; "llama3": frequency-dependent), angles = position * inv_freq,
// cos/sin tables [T, D] built from cat(angles, angles), applied with rotate_half.
#pragma once
#include <torch/torch.h>

#include "forma/model/config.h"

namespace forma {

// [rotary_dim / 2] fp32 (rotary_dim = head_dim unless partial rotary), after any rope_scaling.
torch::Tensor rope_inv_freq(const ModelConfig& config);

struct RopeTables {
  torch::Tensor cos, sin;  // [T, D], or [B, 1, T, D] for per-row positions
};

// Tables for positions start..start+count-1, fp32, on inv_freq's device.
RopeTables rope_tables(const torch::Tensor& inv_freq, int64_t start, int64_t count);
// Tables for arbitrary integer positions [...] (e.g. [B, 1, T] per batch row) -> [..., D].
RopeTables rope_tables_at(const torch::Tensor& inv_freq, const torch::Tensor& positions);

// x [B, H, T, D] rotated by cos/sin [T, R] (or [B, 1, T, R]): x * cos + rotate_half(x) * sin on the
// first R dims; with R < D (partial rotary) the other D - R dims pass unchanged. `interleaved`
// (GPT-J): dims 2i and 2i+1 form pair i instead of i and i + R/2, same angles.
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, bool interleaved = false);

}  // namespace forma
