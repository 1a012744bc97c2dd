#include "forma/kernels/gemv.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <vector>

#include "forma/core/error.h"
#include "forma/kernels/cpu_vector.h"

// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (_mm512_undefined_ps), which
// -Wuninitialized reports in every function that inlines them: a false positive, silenced here only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace forma::kernels {

namespace {

using cpu::bf16_to_float;
using cpu::float_to_bf16;
using cpu::hsum256;
using cpu::hsum512;

// The rows of x a tile covers at most (the register budget: M·R accumulators + R weight vectors + 1).
constexpr int kTileRows = 4;

// One tile: out[i·R + r] = Σ_k x[i, k] · w[r, k] for M rows of x and R rows of W. The ISA structs
// below provide tile<M, R>; the driver is ISA-free.
struct Avx512F32 {
  static constexpr int kRowsOfW = 4;
  template <int M, int R>
  FORMA_TARGET_AVX512 static void tile(const float* x, const float* w, int64_t k, float* out, const float* next) {
    __m512 acc[M][R];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
    }
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16) {
      if (next) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * k + kk), _MM_HINT_T1);
      }
      __m512 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(w + r * k + kk);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512 xv = _mm512_loadu_ps(x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
    if (kk < k) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1u);
      __m512 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_ps(mask, w + r * k + kk);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) out[i * R + r] = hsum512(acc[i][r]);
    }
  }
};

// bf16 weights against x already widened to fp32 (once per call): 16 weights per step.
struct Avx512Bf16Widen {
  static constexpr int kRowsOfW = 4;
  FORMA_TARGET_AVX512 static __m512 widen(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
  }
  template <int M, int R>
  FORMA_TARGET_AVX512 static void tile(const float* x, const uint16_t* w, int64_t k, float* out, const uint16_t* next) {
    __m512 acc[M][R];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
    }
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16) {
      if (next) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * k + kk), _MM_HINT_T1);
      }
      __m512 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        wv[r] = widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * k + kk)));
      }
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512 xv = _mm512_loadu_ps(x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
    if (kk < k) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1u);
      __m512 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = widen(_mm256_maskz_loadu_epi16(mask, w + r * k + kk));
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) out[i * R + r] = hsum512(acc[i][r]);
    }
  }
};

// bf16 against bf16 with AVX512_BF16's dot products: 32 pairs per instruction, fp32 accumulators.
struct Avx512Bf16Dot {
  static constexpr int kRowsOfW = 4;
  template <int M, int R>
  FORMA_TARGET_AVX512BF16 static void tile(const uint16_t* x, const uint16_t* w, int64_t k, float* out, const uint16_t* next) {
    __m512 acc[M][R];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
    }
    int64_t kk = 0;
    for (; kk + 32 <= k; kk += 32) {
      if (next) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * k + kk), _MM_HINT_T1);
      }
      __m512bh wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = (__m512bh)_mm512_loadu_si512(w + r * k + kk);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xv, wv[r]);
      }
    }
    if (kk < k) {
      // Zeros past the end: 0·0 adds nothing.
      const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << (k - kk)) - 1u);
      __m512bh wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + r * k + kk);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xv, wv[r]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) out[i * R + r] = hsum512(acc[i][r]);
    }
  }
};

FORMA_TARGET_AVX2 __m256i avx2_tail_mask(int64_t count) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lanes);
}

// 16 ymm registers: M·R + R + 1 <= 16 for M = 4, R = 2.
struct Avx2F32 {
  static constexpr int kRowsOfW = 2;
  template <int M, int R>
  FORMA_TARGET_AVX2 static void tile(const float* x, const float* w, int64_t k, float* out, const float* next) {
    __m256 acc[M][R];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[i][r] = _mm256_setzero_ps();
    }
    int64_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
      if (next) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * k + kk), _MM_HINT_T1);
      }
      __m256 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_ps(w + r * k + kk);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m256 xv = _mm256_loadu_ps(x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm256_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
    if (kk < k) {
      const __m256i mask = avx2_tail_mask(k - kk);
      __m256 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = _mm256_maskload_ps(w + r * k + kk, mask);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m256 xv = _mm256_maskload_ps(x + i * k + kk, mask);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm256_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) out[i * R + r] = hsum256(acc[i][r]);
    }
  }
};

struct Avx2Bf16Widen {
  static constexpr int kRowsOfW = 2;
  FORMA_TARGET_AVX2 static __m256 widen(__m128i v) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
  }
  template <int M, int R>
  FORMA_TARGET_AVX2 static void tile(const float* x, const uint16_t* w, int64_t k, float* out, const uint16_t* next) {
    __m256 acc[M][R];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[i][r] = _mm256_setzero_ps();
    }
    int64_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
      if (next) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * k + kk), _MM_HINT_T1);
      }
      __m256 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * k + kk)));
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m256 xv = _mm256_loadu_ps(x + i * k + kk);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm256_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
    if (kk < k) {
      // AVX2 has no 16-bit masked load: the last weights go through a zero-padded copy.
      const __m256i mask = avx2_tail_mask(k - kk);
      __m256 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        alignas(16) uint16_t padded[8] = {};
        std::memcpy(padded, w + r * k + kk, static_cast<size_t>(k - kk) * sizeof(uint16_t));
        wv[r] = widen(_mm_load_si128(reinterpret_cast<const __m128i*>(padded)));
      }
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m256 xv = _mm256_maskload_ps(x + i * k + kk, mask);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm256_fmadd_ps(xv, wv[r], acc[i][r]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) out[i * R + r] = hsum256(acc[i][r]);
    }
  }
};

// The reference: the same blocking, plain loops (the compiler's baseline flags).
template <typename XT, typename WT>
struct Scalar {
  static constexpr int kRowsOfW = 1;
  static float value(float v) { return v; }
  static float value(uint16_t v) { return bf16_to_float(v); }
  template <int M, int R>
  static void tile(const XT* x, const WT* w, int64_t k, float* out, const WT* /*next*/) {
    for (int i = 0; i < M; ++i) {
      for (int r = 0; r < R; ++r) {
        float acc = 0.0f;
        for (int64_t kk = 0; kk < k; ++kk) acc += value(x[i * k + kk]) * value(w[r * k + kk]);
        out[i * R + r] = acc;
      }
    }
  }
};

template <typename Isa, int M, typename XT, typename WT>
void tile_rows(const XT* x, const WT* w, int64_t k, int rows, float* out, const WT* next) {
  constexpr int R = Isa::kRowsOfW;
  if (rows == R) {
    Isa::template tile<M, R>(x, w, k, out, next);
    return;
  }
  // The last rows of a thread's range: one at a time, then spread into the R-wide layout of out.
  float one[M];
  for (int r = 0; r < rows; ++r) {
    Isa::template tile<M, 1>(x, w + r * k, k, one, nullptr);
    for (int i = 0; i < M; ++i) out[i * R + r] = one[i];
  }
}

// Rows [j0, j1) of W against all m rows of x: each block of R rows of W is read from memory once and
// stays in L1/L2 while the tiles of x pass over it.
template <typename Isa, typename XT, typename WT, typename YT>
void gemv_range(const XT* x, const WT* w, const YT* bias, YT* y, int64_t m, int64_t n, int64_t k, int64_t j0,
                int64_t j1) {
  constexpr int R = Isa::kRowsOfW;
  float out[kTileRows * R];
  for (int64_t j = j0; j < j1; j += R) {
    const int rows = static_cast<int>(std::min<int64_t>(R, j1 - j));
    const WT* wj = w + j * k;
    for (int64_t i0 = 0; i0 < m; i0 += kTileRows) {
      const int mi = static_cast<int>(std::min<int64_t>(kTileRows, m - i0));
      const XT* xi = x + i0 * k;
      // The first pass over this block of W asks for the next block (software prefetch into L2: the
      // rows are short streams the hardware prefetchers pick up late); later passes find it cached.
      const WT* next = i0 == 0 && j + 2 * R <= j1 ? wj + R * k : nullptr;
      switch (mi) {
        case 1: tile_rows<Isa, 1>(xi, wj, k, rows, out, next); break;
        case 2: tile_rows<Isa, 2>(xi, wj, k, rows, out, next); break;
        case 3: tile_rows<Isa, 3>(xi, wj, k, rows, out, next); break;
        default: tile_rows<Isa, 4>(xi, wj, k, rows, out, next); break;
      }
      for (int i = 0; i < mi; ++i) {
        for (int r = 0; r < rows; ++r) {
          float v = out[i * R + r];
          if constexpr (std::is_same_v<YT, float>) {
            if (bias) v += bias[j + r];
            y[(i0 + i) * n + j + r] = v;
          } else {
            if (bias) v += bf16_to_float(bias[j + r]);
            y[(i0 + i) * n + j + r] = float_to_bf16(v);
          }
        }
      }
    }
  }
}

// Splits W's rows among LibTorch's threads; a range below the grain (about 64 KiB of weights) runs
// on the calling thread alone.
template <typename Isa, typename XT, typename WT, typename YT>
void gemv_parallel(const XT* x, const WT* w, const YT* bias, YT* y, int64_t m, int64_t n, int64_t k) {
  const int64_t grain = std::max<int64_t>(Isa::kRowsOfW, (int64_t{64} << 10) / (k * int64_t(sizeof(WT))));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    gemv_range<Isa>(x, w, bias, y, m, n, k, begin, end);
  });
}

bool cpu_has(GemvPath path) {
  switch (path) {
    case GemvPath::Auto:
    case GemvPath::Scalar: return true;
    case GemvPath::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemvPath::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
    case GemvPath::Avx512Bf16: return cpu_has(GemvPath::Avx512) && __builtin_cpu_supports("avx512bf16");
  }
  return false;
}

// -1: not resolved yet; else the GemvPath the kernels take.
std::atomic<int> g_active{-1};
std::mutex g_resolve_mutex;

GemvPath checked(GemvPath path, const std::string& what) {
  check(cpu_has(path), "{} asks for the {} kernels, which this CPU cannot run (it runs: {})", what,
        gemv_path_name(path), gemv_path_name(best_gemv_path()));
  return path == GemvPath::Auto ? best_gemv_path() : path;
}

// "[2, 768] Float on cpu (contiguous)", for errors.
std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream out;
  out << t.sizes() << " " << t.scalar_type() << " on " << t.device() << (t.is_contiguous() ? "" : " (non-contiguous)");
  return out.str();
}

}  // namespace

const char* gemv_path_name(GemvPath path) {
  switch (path) {
    case GemvPath::Auto: return "auto";
    case GemvPath::Scalar: return "scalar";
    case GemvPath::Avx2: return "avx2";
    case GemvPath::Avx512: return "avx512";
    case GemvPath::Avx512Bf16: return "avx512bf16";
  }
  return "?";
}

GemvPath parse_gemv_path(const std::string& name, const std::string& what) {
  for (GemvPath p : {GemvPath::Auto, GemvPath::Scalar, GemvPath::Avx2, GemvPath::Avx512, GemvPath::Avx512Bf16}) {
    if (name == gemv_path_name(p)) return p;
  }
  fail("{} must be auto, avx512bf16, avx512, avx2 or scalar, not '{}'", what, name);
}

bool gemv_path_available(GemvPath path) { return cpu_has(path); }

GemvPath best_gemv_path() {
  for (GemvPath p : {GemvPath::Avx512Bf16, GemvPath::Avx512, GemvPath::Avx2}) {
    if (cpu_has(p)) return p;
  }
  return GemvPath::Scalar;
}

void set_gemv_path(GemvPath path) {
  std::lock_guard<std::mutex> lock(g_resolve_mutex);
  GemvPath resolved = path;
  if (path == GemvPath::Auto) {
    const char* env = std::getenv("FORMA_KERNELS");
    resolved = env && *env ? parse_gemv_path(env, "FORMA_KERNELS") : GemvPath::Auto;
    resolved = checked(resolved, env && *env ? "FORMA_KERNELS" : "auto");
  } else {
    resolved = checked(path, "set_gemv_path");
  }
  g_active.store(static_cast<int>(resolved));
}

GemvPath active_gemv_path() {
  int active = g_active.load();
  if (active < 0) {
    set_gemv_path(GemvPath::Auto);
    active = g_active.load();
  }
  return static_cast<GemvPath>(active);
}

void gemv_f32(const float* x, const float* w, const float* bias, float* y, int64_t m, int64_t n, int64_t k,
              GemvPath path) {
  check(m >= 1 && m <= kGemvMaxRows && n >= 1 && k >= 1, "gemv_f32: m must be 1..{}, n and k >= 1 (m {}, n {}, k {})",
        kGemvMaxRows, m, n, k);
  if (path == GemvPath::Auto) path = active_gemv_path();
  switch (path) {
    case GemvPath::Avx512Bf16:
    case GemvPath::Avx512: gemv_parallel<Avx512F32>(x, w, bias, y, m, n, k); break;
    case GemvPath::Avx2: gemv_parallel<Avx2F32>(x, w, bias, y, m, n, k); break;
    default: gemv_parallel<Scalar<float, float>>(x, w, bias, y, m, n, k); break;
  }
}

void gemv_bf16(const uint16_t* x, const uint16_t* w, const uint16_t* bias, uint16_t* y, int64_t m, int64_t n,
               int64_t k, GemvPath path) {
  check(m >= 1 && m <= kGemvMaxRows && n >= 1 && k >= 1,
        "gemv_bf16: m must be 1..{}, n and k >= 1 (m {}, n {}, k {})", kGemvMaxRows, m, n, k);
  if (path == GemvPath::Auto) path = active_gemv_path();
  if (path == GemvPath::Avx512Bf16) {
    gemv_parallel<Avx512Bf16Dot>(x, w, bias, y, m, n, k);
    return;
  }
  // The other paths widen x to fp32 once per call (m·k values: at most 16 rows) so that only the
  // weights are widened in the inner loop.
  thread_local std::vector<float> x32;
  x32.resize(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m * k; ++i) x32[i] = bf16_to_float(x[i]);
  switch (path) {
    case GemvPath::Avx512: gemv_parallel<Avx512Bf16Widen>(x32.data(), w, bias, y, m, n, k); break;
    case GemvPath::Avx2: gemv_parallel<Avx2Bf16Widen>(x32.data(), w, bias, y, m, n, k); break;
    default: gemv_parallel<Scalar<float, uint16_t>>(x32.data(), w, bias, y, m, n, k); break;
  }
}

bool gemv_supported(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!x.defined() || !weight.defined()) return false;
  if (!x.device().is_cpu() || !weight.device().is_cpu()) return false;
  if (x.layout() != torch::kStrided || weight.layout() != torch::kStrided) return false;
  if (x.scalar_type() != weight.scalar_type()) return false;
  if (x.scalar_type() != torch::kFloat && x.scalar_type() != torch::kBFloat16) return false;
  if (weight.dim() != 2 || !weight.is_contiguous() || x.dim() < 1) return false;
  const int64_t n = weight.size(0), k = weight.size(1);
  if (n < 1 || k < 1 || x.size(-1) != k) return false;
  const int64_t m = x.numel() / k;
  if (m < 1 || m > kGemvMaxRows) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) return false;
  return true;
}

torch::Tensor linear_small_batch(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  check(gemv_supported(x, weight),
        "linear_small_batch: unsupported input (x {}, weight {}): use at::linear (see gemv_supported)", describe(x),
        describe(weight));
  const int64_t n = weight.size(0), k = weight.size(1);
  torch::Tensor b;
  if (bias.defined()) {
    check(bias.dim() == 1 && bias.size(0) == n && bias.scalar_type() == x.scalar_type() && bias.device().is_cpu(),
          "linear_small_batch: the bias must be [{}] {} on the CPU, not {}", n, c10::toString(x.scalar_type()),
          describe(bias));
    check(!(torch::GradMode::is_enabled() && bias.requires_grad()),
          "linear_small_batch: no autograd (the bias requires a gradient)");
    b = bias.contiguous();
  }
  // A non-contiguous x (a slice, a transpose) is copied: at most 16 rows.
  const torch::Tensor x2 = x.reshape({-1, k}).contiguous();
  const int64_t m = x2.size(0);
  torch::Tensor y = torch::empty({m, n}, x.options().memory_format(torch::MemoryFormat::Contiguous));
  if (x.scalar_type() == torch::kFloat) {
    gemv_f32(x2.data_ptr<float>(), weight.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
             y.data_ptr<float>(), m, n, k, GemvPath::Auto);
  } else {
    auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
    gemv_bf16(bits(x2), bits(weight), b.defined() ? bits(b) : nullptr, bits(y), m, n, k, GemvPath::Auto);
  }
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = n;
  return y.view(shape);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (gemv_supported(x, weight)) return linear_small_batch(x, weight, bias);
  return torch::linear(x, weight, bias);
}

}  // namespace forma::kernels
