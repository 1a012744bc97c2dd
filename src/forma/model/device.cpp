#include "forma/model/device.h"

#include <ATen/detail/CUDAHooksInterface.h>

#include "forma/core/error.h"

namespace forma {

bool cuda_compiled() { return !cuda_runtime_version().empty(); }

std::string cuda_runtime_version() {
  // Without libtorch_cuda the hooks are LibTorch's stub, which throws instead of answering.
  try {
    long v = at::detail::getCUDAHooks().versionCUDART();
    return v > 0 ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : "";
  } catch (const std::exception&) {
    return "";
  }
}

int cuda_device_count() { return cuda_compiled() ? static_cast<int>(torch::cuda::device_count()) : 0; }

torch::Device resolve_device(const std::string& text, const std::string& what, int local_rank) {
  const int gpus = cuda_device_count();
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text == "auto" && gpus == 0) return torch::Device(torch::kCPU);
  check(text == "auto" || text == "cuda" || text.rfind("cuda:", 0) == 0,
        "{}: \"{}\" is not a device (expected cpu, cuda, cuda:N or auto)", what, text);
  check(cuda_compiled(), "{}: {}: this LibTorch was built without CUDA", what, text);
  check(gpus > 0, "{}: {}: no CUDA device is visible (CUDA_VISIBLE_DEVICES={})", what, text,
        std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "unset");
  int index = local_rank >= 0 ? local_rank : 0;
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    check(!digits.empty() && digits.size() < 4 && digits.find_first_not_of("0123456789") == std::string::npos,
          "{}: \"{}\" is not a device (expected cuda:N with N a GPU index)", what, text);
    index = std::stoi(digits);
  }
  check(index < gpus, "{}: cuda:{} does not exist: {} CUDA device(s) visible{}", what, index, gpus,
        local_rank >= 0 ? fmt::format(" (local rank {} takes the GPU of its index)", local_rank) : "");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void make_current(const torch::Device& device) {
  if (!device.is_cuda()) return;
  // The device guard's implementation for CUDA lives in libtorch_cuda; going through it keeps this file
  // free of CUDA headers.
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
}

}  // namespace forma
