#include "forma/kernels/decode_attention.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "forma/core/error.h"
#include "forma/kernels/cpu_vector.h"
#include "forma/kernels/gemv.h"

// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace forma::kernels {

namespace {

using cpu::hsum256;
using cpu::hsum512;

float to_float(float v) { return v; }
float to_float(uint16_t v) { return cpu::bf16_to_float(v); }
void from_float(float f, float* out) { *out = f; }
void from_float(float f, uint16_t* out) { *out = cpu::float_to_bf16(f); }

// The per-key work of one path: dot(q, k) and out += p · v over D values, q and out fp32.
struct ScalarOps {
  template <typename T>
  static float dot(const float* q, const T* k, int64_t d) {
    float s = 0;
    for (int64_t i = 0; i < d; ++i) s += q[i] * to_float(k[i]);
    return s;
  }
  template <typename T>
  static void axpy(float p, const T* v, float* out, int64_t d) {
    for (int64_t i = 0; i < d; ++i) out[i] += p * to_float(v[i]);
  }
  // e[j] = exp(s[j] - max), 0 where s[j] is -inf; returns Σ e.
  static float exp_shifted(float* s, int64_t n, float max) {
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = std::isinf(s[j]) ? 0.0f : std::exp(s[j] - max);
      sum += s[j];
    }
    return sum;
  }
};

struct Avx512Ops {
  FORMA_TARGET_AVX512 static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  FORMA_TARGET_AVX512 static __m512 load(const uint16_t* p) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  FORMA_TARGET_AVX512 static __m512 load_tail(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  FORMA_TARGET_AVX512 static __m512 load_tail(const uint16_t* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
  template <typename T>
  FORMA_TARGET_AVX512 static float dot(const float* q, const T* k, int64_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load(k + i), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), load(k + i + 16), a1);
    }
    for (; i + 16 <= d; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load(k + i), a0);
    if (i < d) {
      const __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1u);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load_tail(k + i, m), a0);
    }
    return hsum512(_mm512_add_ps(a0, a1));
  }
  template <typename T>
  FORMA_TARGET_AVX512 static void axpy(float p, const T* v, float* out, int64_t d) {
    const __m512 pv = _mm512_set1_ps(p);
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) _mm512_storeu_ps(out + i, _mm512_fmadd_ps(pv, load(v + i), _mm512_loadu_ps(out + i)));
    if (i < d) {
      const __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1u);
      _mm512_mask_storeu_ps(out + i, m, _mm512_fmadd_ps(pv, load_tail(v + i, m), _mm512_maskz_loadu_ps(m, out + i)));
    }
  }
  // exp(x) for x <= 0 (Cephes' expf: x = n ln2 + r, a degree-5 polynomial in r, scaled by 2^n);
  // below -87.3 (and -inf) exactly 0.
  FORMA_TARGET_AVX512 static __m512 exp_nonpositive(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n));
  }
  FORMA_TARGET_AVX512 static float exp_shifted(float* s, int64_t n, float max) {
    const __m512 mv = _mm512_set1_ps(max);
    __m512 sum = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + j), mv));
      _mm512_storeu_ps(s + j, e);
      sum = _mm512_add_ps(sum, e);
    }
    if (j < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - j)) - 1u);
      const __m512 e = _mm512_maskz_mov_ps(m, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), mv)));
      _mm512_mask_storeu_ps(s + j, m, e);
      sum = _mm512_add_ps(sum, e);
    }
    return hsum512(sum);
  }
};

struct Avx2Ops {
  FORMA_TARGET_AVX2 static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  FORMA_TARGET_AVX2 static __m256 load(const uint16_t* p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  template <typename T>
  FORMA_TARGET_AVX2 static float dot(const float* q, const T* k, int64_t d) {
    __m256 a = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= d; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load(k + i), a);
    float s = hsum256(a);
    for (; i < d; ++i) s += q[i] * to_float(k[i]);
    return s;
  }
  template <typename T>
  FORMA_TARGET_AVX2 static void axpy(float p, const T* v, float* out, int64_t d) {
    const __m256 pv = _mm256_set1_ps(p);
    int64_t i = 0;
    for (; i + 8 <= d; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, load(v + i), _mm256_loadu_ps(out + i)));
    for (; i < d; ++i) out[i] += p * to_float(v[i]);
  }
  static float exp_shifted(float* s, int64_t n, float max) { return ScalarOps::exp_shifted(s, n, max); }
};

struct Views {
  int64_t batch, q_heads, kv_heads, keys, dim;
  int64_t q_b, q_h, k_b, k_h, k_s, v_b, v_h, v_s;  // strides in elements
  const bool* allowed;                             // [mask_rows, keys] or null
  int64_t mask_rows;
  float scale;
};

template <typename Ops, typename T>
void run(const Views& w, const T* q, const T* k, const T* v, T* out) {
  const int64_t group = w.q_heads / w.kv_heads;
  at::parallel_for(0, w.batch * w.q_heads, 1, [&](int64_t begin, int64_t end) {
    // Scratch reused across calls: no allocation per decode step once the longest context was seen.
    thread_local std::vector<float> scores, query, sum;
    scores.resize(static_cast<size_t>(w.keys));
    query.resize(static_cast<size_t>(w.dim));
    sum.resize(static_cast<size_t>(w.dim));
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t b = unit / w.q_heads, h = unit % w.q_heads, kv = h / group;
      const T* qrow = q + b * w.q_b + h * w.q_h;
      for (int64_t i = 0; i < w.dim; ++i) query[static_cast<size_t>(i)] = to_float(qrow[i]);
      const T* kb = k + b * w.k_b + kv * w.k_h;
      const T* vb = v + b * w.v_b + kv * w.v_h;
      const bool* allowed = w.allowed ? w.allowed + (w.mask_rows > 1 ? b : 0) * w.keys : nullptr;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < w.keys; ++j) {
        float s = -std::numeric_limits<float>::infinity();
        if (!allowed || allowed[j]) {
          s = Ops::dot(query.data(), kb + j * w.k_s, w.dim) * w.scale;
          max = std::max(max, s);
        }
        scores[static_cast<size_t>(j)] = s;
      }
      T* orow = out + unit * w.dim;
      if (std::isinf(max)) {  // no key allowed
        for (int64_t i = 0; i < w.dim; ++i) from_float(0.0f, orow + i);
        continue;
      }
      const float total = Ops::exp_shifted(scores.data(), w.keys, max);
      if constexpr (std::is_same_v<T, uint16_t>) {
        // As LibTorch's flash kernel (the prefill's, and the no-cache forward's) does in bf16: the
        // weights exp(s - max) rounded to bf16 for the product with V, their sum taken before.
        for (float& e : scores) {
          uint16_t rounded;
          from_float(e, &rounded);
          e = to_float(rounded);
        }
      }
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int64_t j = 0; j < w.keys; ++j) {
        const float p = scores[static_cast<size_t>(j)];
        if (p != 0.0f) Ops::axpy(p, vb + j * w.v_s, sum.data(), w.dim);
      }
      const float inv = 1.0f / total;
      for (int64_t i = 0; i < w.dim; ++i) from_float(sum[static_cast<size_t>(i)] * inv, orow + i);
    }
  });
}

template <typename T>
void dispatch(const Views& w, const T* q, const T* k, const T* v, T* out) {
  switch (active_gemv_path()) {
    case GemvPath::Avx512:
    case GemvPath::Avx512Bf16: return run<Avx512Ops>(w, q, k, v, out);
    case GemvPath::Avx2: return run<Avx2Ops>(w, q, k, v, out);
    default: return run<ScalarOps>(w, q, k, v, out);
  }
}

bool mask_fits(const torch::Tensor& allowed, int64_t batch, int64_t keys) {
  if (!allowed.defined()) return true;
  if (allowed.scalar_type() != torch::kBool || !allowed.device().is_cpu() || allowed.size(-1) != keys) return false;
  if (allowed.dim() == 2) return allowed.size(0) == 1;
  return allowed.dim() == 4 && allowed.size(1) == 1 && allowed.size(2) == 1 &&
         (allowed.size(0) == 1 || allowed.size(0) == batch);
}

}  // namespace

bool decode_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& allowed) {
  if (!q.defined() || !k.defined() || !v.defined() || q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return false;
  if (!q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu()) return false;
  const auto dtype = q.scalar_type();
  if ((dtype != torch::kFloat && dtype != torch::kBFloat16) || k.scalar_type() != dtype || v.scalar_type() != dtype) {
    return false;
  }
  if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  const int64_t batch = q.size(0), q_heads = q.size(1), dim = q.size(3);
  if (q.size(2) != 1 || dim < 1 || k.size(0) != batch || v.size(0) != batch || k.size(1) < 1 ||
      q_heads % k.size(1) != 0 || v.size(1) != k.size(1) || k.size(2) < 1 || v.size(2) != k.size(2) ||
      k.size(3) != dim || v.size(3) != dim) {
    return false;
  }
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return false;
  return mask_fits(allowed, batch, k.size(2));
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                               const torch::Tensor& allowed) {
  check(decode_attention_supported(q, k, v, allowed),
        "decode_attention: unsupported case (q [{}], k [{}], v [{}], mask [{}])", fmt::join(q.sizes(), ", "),
        fmt::join(k.sizes(), ", "), fmt::join(v.sizes(), ", "),
        fmt::join(allowed.defined() ? allowed.sizes() : c10::IntArrayRef{}, ", "));
  const torch::Tensor mask = allowed.defined() ? allowed.reshape({-1, k.size(2)}).contiguous() : torch::Tensor();
  Views w{q.size(0), q.size(1), k.size(1), k.size(2), q.size(3), q.stride(0), q.stride(1), k.stride(0), k.stride(1),
          k.stride(2), v.stride(0), v.stride(1), v.stride(2), mask.defined() ? mask.data_ptr<bool>() : nullptr,
          mask.defined() ? mask.size(0) : 0, static_cast<float>(scale)};
  torch::Tensor out = torch::empty({q.size(0), q.size(1), 1, q.size(3)}, q.options());
  if (q.scalar_type() == torch::kFloat) {
    dispatch(w, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>());
  } else {
    auto p = [](const torch::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); };
    dispatch(w, p(q), p(k), p(v), reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()));
  }
  return out;
}

}  // namespace forma::kernels
