#include "forma/model/rope.h"

#include <algorithm>
#include <cmath>

#include "forma/core/error.h"

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

// yarn's and longrope's factor: absent means max_position_embeddings / original_max.
double yarn_factor(const ModelConfig& c) {
  const RopeScaling& s = *c.rope_scaling;
  if (s.factor_given) return s.factor;
  return static_cast<double>(c.max_position_embeddings) / static_cast<double>(s.original_max_position_embeddings);
}
double longrope_factor(const ModelConfig& c) { return yarn_factor(c); }

// HF yarn_get_mscale: YaRN's eq. 21.
double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// HF _compute_yarn_parameters: frequencies that rotate fewer than beta_slow times over the original
// length are interpolated (divided by factor), more than beta_fast times kept, a linear ramp between.
torch::Tensor yarn_scaled(const torch::Tensor& pos_freqs, const ModelConfig& c) {
  const RopeScaling& s = *c.rope_scaling;
  const double dim = static_cast<double>(c.rotary_dim());
  const double base = c.rope_theta;
  const double original = static_cast<double>(s.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return dim * std::log(original / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1);
  if (low == high) high += 0.001;  // HF: prevents a division by zero
  torch::Tensor ramp =
      ((torch::arange(c.rotary_dim() / 2, torch::kFloat) - low) / (high - low)).clamp(0, 1);
  torch::Tensor extrapolation_weight = 1 - ramp;
  torch::Tensor extrapolation = 1.0 / pos_freqs, interpolation = 1.0 / (yarn_factor(c) * pos_freqs);
  return interpolation * (1 - extrapolation_weight) + extrapolation * extrapolation_weight;
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

bool rope_depends_on_length(const ModelConfig& config) {
  return config.rope_scaling &&
         (config.rope_scaling->rope_type == "dynamic" || config.rope_scaling->rope_type == "longrope");
}

double rope_attention_factor(const ModelConfig& config) {
  if (!config.rope_scaling) return 1.0;
  const RopeScaling& s = *config.rope_scaling;
  if (s.attention_factor) return *s.attention_factor;
  if (s.rope_type == "yarn") {
    const double factor = yarn_factor(config);
    if (s.mscale && s.mscale_all_dim && *s.mscale != 0 && *s.mscale_all_dim != 0) {
      return yarn_mscale(factor, *s.mscale) / yarn_mscale(factor, *s.mscale_all_dim);
    }
    return yarn_mscale(factor, 1.0);
  }
  if (s.rope_type == "longrope") {
    const double factor = longrope_factor(config);
    if (factor <= 1.0) return 1.0;
    return std::sqrt(1 + std::log(factor) / std::log(static_cast<double>(s.original_max_position_embeddings)));
  }
  return 1.0;
}

torch::Tensor rope_inv_freq(const ModelConfig& config, int64_t seq_len) {
  const int64_t dim = config.rotary_dim();  // partial rotary: only these dims rotate
  // Same fp32 arithmetic as HF: arange(0, D, 2).float() / D, then theta ** that.
  torch::Tensor exponent = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat) / static_cast<float>(dim);
  double theta = config.rope_theta;
  const RopeScaling* s = config.rope_scaling ? &*config.rope_scaling : nullptr;
  if (s && s->rope_type == "dynamic") {
    // HF _compute_dynamic_ntk_parameters: the base grows with the length past max_position.
    const double length = static_cast<double>(std::max(seq_len, config.max_position_embeddings));
    const double max_len = static_cast<double>(config.max_position_embeddings);
    const double d = static_cast<double>(dim);
    theta = theta * std::pow(s->factor * length / max_len - (s->factor - 1), d / (d - 2));
  }
  torch::Tensor pos_freqs = torch::pow(static_cast<float>(theta), exponent);
  if (!s) return 1.0 / pos_freqs;
  if (s->rope_type == "linear") return 1.0 / pos_freqs / s->factor;
  if (s->rope_type == "llama3") return llama3_scaled(1.0 / pos_freqs, *s);
  if (s->rope_type == "yarn") return yarn_scaled(pos_freqs, config);
  if (s->rope_type == "longrope") {
    for (const auto& [key, list] : {std::pair{"short_factor", &s->short_factor}, std::pair{"long_factor", &s->long_factor}}) {
      check(static_cast<int64_t>(list->size()) == dim / 2,
            "{}: field 'rope_scaling.{}' has {} numbers; the rotary dimension {} needs {}", config.source, key,
            list->size(), dim, dim / 2);
    }
    const bool is_long = seq_len > s->original_max_position_embeddings;
    const std::vector<double>& factors = is_long ? s->long_factor : s->short_factor;
    torch::Tensor ext = torch::tensor(factors, torch::kDouble).to(torch::kFloat);
    return 1.0 / (ext * pos_freqs);
  }
  return 1.0 / pos_freqs;  // "dynamic": the base above
}

RopeTables rope_tables(const torch::Tensor& inv_freq, int64_t start, int64_t count, double scale) {
  return rope_tables_at(inv_freq, torch::arange(start, start + count, torch::TensorOptions().device(inv_freq.device())),
                        scale);
}

RopeTables rope_tables_at(const torch::Tensor& inv_freq, const torch::Tensor& positions, double scale) {
  // One fp32 product position * inv_freq per angle (what HF's outer product computes), so the
  // tables of a position are the same whichever call or batch row asks for it.
  torch::Tensor angles = positions.to(inv_freq.device(), torch::kFloat).unsqueeze(-1) *
                         inv_freq.to(torch::kFloat);       // [..., D/2]
  torch::Tensor emb = torch::cat({angles, angles}, -1);  // [..., D]
  if (scale == 1.0) return {emb.cos(), emb.sin()};
  return {emb.cos() * scale, emb.sin() * scale};  // HF: in fp32, before the cast to the model dtype
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
