#include "forma/kernels/bandwidth.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "forma/core/error.h"

// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (_mm512_undefined_ps), which
// -Wuninitialized reports in every function that inlines them: a false positive, silenced here only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace forma::kernels {

namespace {

// Four independent accumulators of 64-byte loads: enough loads in flight to be bound by memory.
__attribute__((target("avx512f"))) double sum_avx512(const float* p, int64_t count) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= count; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  double s = 0;
  for (float v : lanes) s += v;
  for (; i < count; ++i) s += p[i];
  return s;
}

__attribute__((target("avx2"))) double sum_avx2(const float* p, int64_t count) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= count; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  double s = 0;
  for (float v : lanes) s += v;
  for (; i < count; ++i) s += p[i];
  return s;
}

double sum_scalar(const float* p, int64_t count) {
  double s = 0;
  for (int64_t i = 0; i < count; ++i) s += p[i];
  return s;
}

}  // namespace

ReadBandwidth measure_read_bandwidth(size_t bytes, int passes) {
  check(bytes >= 4096 && passes >= 1, "measure_read_bandwidth: at least 4 KiB and 1 pass");
  const int64_t count = static_cast<int64_t>(bytes / sizeof(float));
  std::unique_ptr<float, decltype(&std::free)> buffer(
      static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(count) * sizeof(float))), &std::free);
  check(buffer != nullptr, "measure_read_bandwidth: cannot allocate {} bytes", bytes);
  float* data = buffer.get();
  // Written by the threads that read it (first touch places the pages near them).
  constexpr int64_t kGrain = int64_t{1} << 16;  // floats: 256 KiB, a multiple of 64 bytes
  // Threads split whole blocks (at::parallel_for splits a range anywhere), so every chunk starts
  // 64-byte aligned.
  const int64_t blocks = (count + kGrain - 1) / kGrain;
  auto span = [&](int64_t block_begin, int64_t block_end) {
    return std::pair<int64_t, int64_t>{block_begin * kGrain, std::min(count, block_end * kGrain)};
  };
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    const auto [begin, end] = span(b0, b1);
    for (int64_t i = begin; i < end; ++i) data[i] = static_cast<float>(i & 7);
  });
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2");
  volatile double sink = 0;
  std::vector<double> rates;
  for (int pass = -1; pass < passes; ++pass) {
    std::vector<double> partial(static_cast<size_t>(at::get_num_threads()) + 1, 0.0);
    const auto start = std::chrono::steady_clock::now();
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      const auto [begin, end] = span(b0, b1);
      const float* p = data + begin;
      const int64_t n = end - begin;
      const double s = avx512 ? sum_avx512(p, n) : avx2 ? sum_avx2(p, n) : sum_scalar(p, n);
      partial[static_cast<size_t>(std::min<int>(at::get_thread_num(), at::get_num_threads()))] += s;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (double s : partial) sink = sink + s;
    if (pass >= 0) rates.push_back(static_cast<double>(count) * sizeof(float) / seconds / 1e9);
  }
  std::vector<double> sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  ReadBandwidth result;
  result.gb_per_s = sorted[sorted.size() / 2];
  result.best_gb_per_s = sorted.back();
  result.bytes = static_cast<size_t>(count) * sizeof(float);
  result.passes = passes;
  result.threads = at::get_num_threads();
  return result;
}

}  // namespace forma::kernels
