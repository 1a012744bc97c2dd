// The machine's own matmul peak in the dtype and on the device a run computes in, measured at
// start-up: the denominator of MFU (bf16 mixed precision is measured against the bf16 peak), and
// the way forma notices a LibTorch whose BLAS is far below what the CPU can do.
#pragma once
#include <torch/torch.h>

namespace forma::train {

// GFLOP/s of a square matmul of size n in `dtype` on `device`, best of `repeats` timed runs.
double measure_matmul_gflops(int n = 1024, int repeats = 3, torch::ScalarType dtype = torch::kFloat,
                             torch::Device device = torch::kCPU);

// Measures the peak once per process and (dtype, device) (cached); warns when fp32 on the CPU looks
// like a reference BLAS.
double matmul_peak_gflops(torch::ScalarType dtype = torch::kFloat, torch::Device device = torch::kCPU);

}  // namespace forma::train
