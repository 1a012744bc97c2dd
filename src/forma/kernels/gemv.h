// Matrix-vector and small-batch products for decode: y[m, n] = x[m, k] · W[n, k]^T (+ bias), W in
// torch::nn::Linear's layout, for m = 1..16 rows of x (decode at batch 1..16). Decode reads every
// weight once per token, so these kernels are built to be bound by memory bandwidth: each row of W is
// read from memory once per call for all m rows of x (a block of W's rows stays in L1/L2 while every
// row of x passes over it), the rows of W are split among LibTorch's threads (at::parallel_for: the
// same pool as the rest of forma), and nothing is packed or allocated per call beyond the output.
//
// dtypes: fp32 (fp32 weights and activations, fp32 accumulation) and bf16 (bf16 weights and
// activations, fp32 accumulation, bf16 output rounded to nearest even once at the end).
//
// Code paths, chosen at run time from the CPU's features (the rest of the build keeps its flags:
// each path is compiled with per-function target attributes):
//   avx512bf16  AVX-512F/BW/VL with AVX512_BF16: bf16 dot products by _mm512_dpbf16_ps
//   avx512      AVX-512F/BW/VL: bf16 converted to fp32 in registers, fp32 FMAs
//   avx2        AVX2 + FMA, the same with 256-bit vectors
//   scalar      plain C++, the reference (also multi-threaded)
// fp32 uses the same kernel on avx512bf16 and avx512. FORMA_KERNELS=auto|avx512bf16|avx512|avx2|scalar
// (read once, at the first call) or set_gemv_path() forces a path; a forced path the CPU lacks is an
// error, never a crash.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace forma::kernels {

enum class GemvPath { Auto, Scalar, Avx2, Avx512, Avx512Bf16 };

// The most rows of x (the product of x's leading dimensions) the kernels take.
constexpr int64_t kGemvMaxRows = 16;

// "auto", "scalar", "avx2", "avx512", "avx512bf16".
const char* gemv_path_name(GemvPath path);
// The path of a name above; throws forma::Error naming `what` for any other text.
GemvPath parse_gemv_path(const std::string& name, const std::string& what = "FORMA_KERNELS");
// Whether this CPU (and compiler) can run `path` (Auto and Scalar: always).
bool gemv_path_available(GemvPath path);
// The best path this CPU runs.
GemvPath best_gemv_path();
// Forces a path for the calls that follow (Auto: the FORMA_KERNELS variable, else the best one).
// Throws forma::Error when the CPU cannot run it. Not meant to be changed while kernels run.
void set_gemv_path(GemvPath path);
// The path the next call takes (never Auto).
GemvPath active_gemv_path();

// Whether linear_small_batch computes x · weight^T: both on the CPU, both fp32 or both bf16, weight
// 2-D [n, k] and contiguous, x [..., k] with 1..kGemvMaxRows rows (x may be non-contiguous: it is
// copied, which is small), n, k >= 1, and no autograd needed (grad mode off or nothing requiring a
// gradient). Otherwise the caller uses at::linear (CUDA, prefill, training, other dtypes).
bool gemv_supported(const torch::Tensor& x, const torch::Tensor& weight);

// x · weight^T + bias as at::linear computes it: [..., k] → [..., n] in x's dtype. bias (undefined for
// none) is [n] in x's dtype on the CPU. Throws forma::Error when !gemv_supported(x, weight) or the bias
// does not fit.
torch::Tensor linear_small_batch(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias = {});

// x · weight^T + bias through linear_small_batch where gemv_supported (decode on the CPU: 1..16 rows,
// no autograd), else at::linear (prefill, training, CUDA). The one linear the model's layers call.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// The raw kernels, on row-major contiguous buffers: x [m, k], w [n, k], bias [n] or null, y [m, n];
// 1 <= m <= kGemvMaxRows. bf16 values are their 16-bit patterns. Threads: at::parallel_for over n.
void gemv_f32(const float* x, const float* w, const float* bias, float* y, int64_t m, int64_t n, int64_t k,
              GemvPath path);
void gemv_bf16(const uint16_t* x, const uint16_t* w, const uint16_t* bias, uint16_t* y, int64_t m, int64_t n,
               int64_t k, GemvPath path);

}  // namespace forma::kernels
