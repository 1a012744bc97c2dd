// The machine's own fp32 matmul peak, measured at start-up: the denominator of MFU, and the way
// forma notices that LibTorch runs on Debian's reference BLAS (~4 GFLOP/s instead of ~130).
#pragma once

namespace forma::train {

// GFLOP/s of a square fp32 matmul of size n on the CPU, best of `repeats` timed runs.
double measure_matmul_gflops(int n = 1024, int repeats = 3);

// Measures the peak once per process (cached) and warns when it looks like the reference BLAS.
double matmul_peak_gflops();

}  // namespace forma::train
