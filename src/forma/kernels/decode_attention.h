// Attention of one new query per sequence over its cached keys: the decode step's attention on the
// CPU. LibTorch's fused kernel (flash attention) is built for blocks of queries; with one query it
// sends every head and key block through a batched BLAS call (a bf16 GEMV per 512 keys), which cost
// about a sixth of a bf16 decode step of the 125M Llama. This kernel reads each cached key and value
// once per query head, straight from the cache's strided views: grouped-query attention reads kv
// head h / (Hq / Hkv) in place, nothing is copied or cast to another dtype.
//
// Numerics: scores, softmax and the weighted sum of values in fp32 (bf16 inputs widened exactly),
// the output rounded to q's dtype once at the end. In bf16 the softmax weights exp(s - max) are
// rounded to bf16 before they multiply V, as LibTorch's flash kernel does (so a decode step agrees
// with the many-query forward of prefill and of a no-cache rerun); their sum is taken in fp32.
//
// Paths, as the GEMV kernels choose them (kernels/gemv.h: FORMA_KERNELS, set_gemv_path): AVX-512
// (both avx512 paths), AVX2 + FMA, and plain C++.
#pragma once

#include <torch/torch.h>

namespace forma::kernels {

// Whether decode_attention computes this case: q [B, Hq, 1, D], k and v [B, Hkv, S, D] on the CPU,
// all fp32 or all bf16, the last dimension contiguous (any other strides: cache views), Hq a multiple
// of Hkv, `allowed` undefined or bool [B or 1, 1, 1, S] / [1, S], and no autograd needed.
bool decode_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& allowed);

// softmax(scale · q·Kᵀ, masked where !allowed) · V: [B, Hq, 1, D] in q's dtype. A row with no allowed
// key gives zeros. Throws forma::Error when !decode_attention_supported.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                               const torch::Tensor& allowed = {});

}  // namespace forma::kernels
