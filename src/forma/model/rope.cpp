#include "forma/model/rope.h"

#include <cmath>

namespace forma {

namespace {

// HF _compute_llama3_parameters: wavelengths longer than original_max / low_freq_factor are
// divided by `factor`, shorter than original_max / high_freq_factor are kept, and the band in
// between is interpolated smoothly.
torch::Tensor llama3_scaled(const torch::Tensor& inv_freq, const RopeScaling& s) {
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  torch::Tensor wavelen = 2 * M_PI / inv_freq;
  torch::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  torch::Tensor smooth =
      (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  torch::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  torch::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(is_medium, smoothed, scaled);
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  auto halves = x.chunk(2, -1);
  return torch::cat({-halves[1], halves[0]}, -1);
}

// HF rotate_every_two: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...).
torch::Tensor rotate_every_two(const torch::Tensor& x) {
  torch::Tensor even = x.slice(-1, 0, x.size(-1), 2), odd = x.slice(-1, 1, x.size(-1), 2);
  return torch::stack({-odd, even}, -1).flatten(-2);
}

}  // namespace

torch::Tensor rope_inv_freq(const ModelConfig& config) {
  const int64_t dim = config.rotary_dim();  // partial rotary: only these dims rotate
  // Same fp32 arithmetic as HF: arange(0, D, 2).float() / D, then theta ** that.
  torch::Tensor exponent = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat) / static_cast<float>(dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(static_cast<float>(config.rope_theta), exponent);
  if (config.rope_scaling) {
    const RopeScaling& s = *config.rope_scaling;
    if (s.rope_type == "linear") inv_freq = inv_freq / s.factor;
    if (s.rope_type == "llama3") inv_freq = llama3_scaled(inv_freq, s);
  }
  return inv_freq;
}

RopeTables rope_tables(const torch::Tensor& inv_freq, int64_t start, int64_t count) {
  return rope_tables_at(inv_freq, torch::arange(start, start + count,
                                                torch::TensorOptions().device(inv_freq.device())));
}

RopeTables rope_tables_at(const torch::Tensor& inv_freq, const torch::Tensor& positions) {
  // One fp32 product position * inv_freq per angle (what HF's outer product computes), so the
  // tables of a position are the same whichever call or batch row asks for it.
  torch::Tensor angles = positions.to(inv_freq.device(), torch::kFloat).unsqueeze(-1) *
                         inv_freq.to(torch::kFloat);       // [..., D/2]
  torch::Tensor emb = torch::cat({angles, angles}, -1);  // [..., D]
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, bool interleaved) {
  const int64_t rotary = tables.cos.size(-1);
  if (rotary < x.size(-1)) {  // partial rotary (HF: q_rot, q_pass): the first dims rotate, the rest pass
    torch::Tensor rotated = apply_rope(x.narrow(-1, 0, rotary), tables, interleaved);
    return torch::cat({rotated, x.narrow(-1, rotary, x.size(-1) - rotary)}, -1);
  }
  torch::Tensor cos = tables.cos.to(x.scalar_type());
  torch::Tensor sin = tables.sin.to(x.scalar_type());
  if (interleaved) {  // the tables hold (angles, angles): each angle twice in a row instead
    cos = cos.narrow(-1, 0, rotary / 2).repeat_interleave(2, -1);
    sin = sin.narrow(-1, 0, rotary / 2).repeat_interleave(2, -1);
    return x * cos + rotate_every_two(x) * sin;
  }
  return x * cos + rotate_half(x) * sin;
}

}  // namespace forma
