#include "forma/train/matmul_peak.h"

#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "forma/core/log.h"

namespace forma::train {

double measure_matmul_gflops(int n, int repeats, torch::ScalarType dtype, torch::Device device) {
  torch::NoGradGuard no_grad;
  // Constant inputs: the speed does not depend on the values, and drawing random ones would advance
  // the default generator, which belongs to the training run (exact resume).
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  auto a = torch::full({n, n}, 0.5, options);
  auto b = torch::full({n, n}, 0.25, options);
  auto wait = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  auto c = torch::mm(a, b);  // warm-up: thread pool, page faults, GPU kernels' first launch
  wait();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    wait();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

double matmul_peak_gflops(torch::ScalarType dtype, torch::Device device) {
  static std::mutex mutex;
  static std::map<std::pair<int, std::string>, double> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(static_cast<int>(dtype), device.str());
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  // GPUs are measured at a size that fills them.
  double g = measure_matmul_gflops(device.is_cuda() ? 8192 : 1024, 3, dtype, device);
  if (dtype == torch::kFloat && !device.is_cuda() && g < 15.0) {
    log::warn("fp32 matmul runs at {:.1f} GFLOP/s: LibTorch's BLAS is far below this CPU's speed (forma env "
              "says which BLAS it uses)", g);
  }
  return cache[key] = g;
}

}  // namespace forma::train
