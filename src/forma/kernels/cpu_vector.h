// What the CPU kernels (gemv.cpp, decode_attention.cpp) share: per-function ISA targets (the rest of
// the build keeps its flags; these functions run only after the CPU said it has the features),
// bf16 <-> fp32 conversions as c10::BFloat16 does them, and horizontal sums.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#define FORMA_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define FORMA_TARGET_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define FORMA_TARGET_AVX2 __attribute__((target("avx2,fma")))

// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (_mm512_undefined_ps), which
// -Wuninitialized reports in every function that inlines them: a false positive, silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace forma::kernels::cpu {

inline float bf16_to_float(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even, as c10::BFloat16 does (NaN stays a quiet NaN).
inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// Σ of the 16 lanes.
FORMA_TARGET_AVX512 inline float hsum512(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));  // 256-bit halves
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));  // 128-bit quarters
  __m128 s = _mm512_castps512_ps128(v);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Σ of the 8 lanes.
FORMA_TARGET_AVX2 inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace forma::kernels::cpu

#pragma GCC diagnostic pop
