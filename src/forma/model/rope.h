// Rotary position embedding as HF computes it: inv_freq[i] = 1 / theta^(2i/D) in fp32, optionally
// rescaled (config.h RopeScaling: linear, llama3, yarn, dynamic, longrope), angles = position * inv_freq,
// cos/sin tables [T, D] built from cat(angles, angles), applied with rotate_half.
#pragma once
#include <torch/torch.h>

#include "forma/model/config.h"

namespace forma {

// [rotary_dim / 2] fp32 (rotary_dim = head_dim unless partial rotary), after any rope_scaling, for
// a forward whose positions reach `seq_len` (its largest position + 1). "dynamic" and "longrope"
// depend on that length (rope_depends_on_length); 0 gives the frequencies HF builds at load. As in
// HF, keys already in a KV cache keep the frequencies they were rotated with.
torch::Tensor rope_inv_freq(const ModelConfig& config, int64_t seq_len = 0);
bool rope_depends_on_length(const ModelConfig& config);
// HF's attention_scaling, which multiplies cos and sin (yarn, longrope); 1 otherwise.
double rope_attention_factor(const ModelConfig& config);

struct RopeTables {
  torch::Tensor cos, sin;  // [T, D], or [B, 1, T, D] for per-row positions
};

// Tables for positions start..start+count-1, fp32, on inv_freq's device, times `scale`
// (rope_attention_factor).
RopeTables rope_tables(const torch::Tensor& inv_freq, int64_t start, int64_t count, double scale = 1.0);
// Tables for arbitrary integer positions [...] (e.g. [B, 1, T] per batch row) -> [..., D].
RopeTables rope_tables_at(const torch::Tensor& inv_freq, const torch::Tensor& positions, double scale = 1.0);

// x [B, H, T, D] rotated by cos/sin [T, R] (or [B, 1, T, R]): x * cos + rotate_half(x) * sin on the
// first R dims; with R < D (partial rotary) the other D - R dims pass unchanged. `interleaved`
// (GPT-J): dims 2i and 2i+1 form pair i instead of i and i + R/2, same angles.
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, bool interleaved = false);

}  // namespace forma
