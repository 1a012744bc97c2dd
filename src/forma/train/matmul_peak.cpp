#include "forma/train/matmul_peak.h"

#include <chrono>

#include "forma/core/log.h"

namespace forma::train {

double measure_matmul_gflops(int n, int repeats) {
  torch::NoGradGuard no_grad;
  // Constant inputs: the speed does not depend on the values, and drawing random ones would advance
  // the default generator, which belongs to the training run (exact resume).
  auto a = torch::full({n, n}, 0.5f);
  auto b = torch::full({n, n}, 0.25f);
  auto c = torch::mm(a, b);  // warm-up: thread pool, page faults
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

double matmul_peak_gflops() {
  static const double peak = [] {
    double g = measure_matmul_gflops();
    if (g < 15.0) {
      log::warn("fp32 matmul runs at {:.1f} GFLOP/s: LibTorch is probably using the reference BLAS; "
                "run scripts/setup.sh (it makes OpenBLAS the active libblas.so.3)", g);
    }
    return g;
  }();
  return peak;
}

}  // namespace forma::train
