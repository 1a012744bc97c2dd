#include "forma/model/device.h"

#include <dlfcn.h>
#include <link.h>

#include <filesystem>

#include "forma/core/error.h"

namespace forma {

namespace device_detail {

// An NVIDIA driver makes these device nodes; without them no GPU can be visible.
bool nvidia_device_nodes() {
  return std::filesystem::exists("/dev/nvidiactl") || std::filesystem::exists("/dev/nvidia0");
}

// The folder of a shared library this process has loaded ("" if none has that file name).
std::string loaded_library_folder(const std::string& file_name) {
  struct Search {
    std::string suffix, folder;
  } search{"/" + file_name, ""};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        const std::string path = info->dlpi_name ? info->dlpi_name : "";
        if (!path.ends_with(s->suffix)) return 0;
        s->folder = path.substr(0, path.size() - s->suffix.size());
        return 1;
      },
      &search);
  return search.folder;
}

struct CudaBackend {
  bool loaded = false;
  std::string error;
};

const CudaBackend& cuda_backend() {
  static const CudaBackend backend = [] {
    CudaBackend b;
#ifdef FORMA_WITH_CUDA
    // RTLD_GLOBAL: its operators and hooks register with libtorch_cpu, its CUDA libraries become
    // visible to the NCCL module (nccl_group.cpp).
    // Beside the libtorch_cpu.so this process runs on, by full path: a bare name would be looked up
    // from the caller's RUNPATH, which is not forma's under a sanitizer's dlopen interceptor.
    const std::string folder = loaded_library_folder("libtorch_cpu.so");
    const std::string path = folder.empty() ? "libtorch_cuda.so" : folder + "/libtorch_cuda.so";
    b.loaded = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr;
    if (!b.loaded) b.error = dlerror();
#else
    b.error = "this forma was built against a LibTorch without CUDA";
#endif
    return b;
  }();
  return backend;
}

// Before main(): LibTorch's first question about CUDA (a seed, a device query) fixes the answer.
[[maybe_unused]] const bool loaded_at_start = nvidia_device_nodes() && cuda_backend().loaded;

}  // namespace device_detail

bool load_cuda_backend(std::string* why) {
  const auto& backend = device_detail::cuda_backend();
  if (why) *why = backend.error;
  return backend.loaded;
}

bool cuda_compiled() { return load_cuda_backend(); }

std::string cuda_runtime_version() {
  if (!load_cuda_backend()) return "";
  // Asked of the CUDA runtime itself (loaded with libtorch_cuda), which answers without a GPU.
  using GetVersion = int (*)(int*);
  auto get = reinterpret_cast<GetVersion>(dlsym(RTLD_DEFAULT, "cudaRuntimeGetVersion"));
  int v = 0;
  if (get == nullptr || get(&v) != 0 || v <= 0) return "";
  return fmt::format("{}.{}", v / 1000, (v % 1000) / 10);
}

int cuda_device_count() {
  if (!device_detail::nvidia_device_nodes() || !load_cuda_backend()) return 0;
  return static_cast<int>(torch::cuda::device_count());
}

torch::Device resolve_device(const std::string& text, const std::string& what, int local_rank) {
  const int gpus = cuda_device_count();
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text == "auto" && gpus == 0) return torch::Device(torch::kCPU);
  check(text == "auto" || text == "cuda" || text.rfind("cuda:", 0) == 0,
        "{}: \"{}\" is not a device (expected cpu, cuda, cuda:N or auto)", what, text);
  std::string why;
  check(load_cuda_backend(&why), "{}: {}: LibTorch's CUDA library does not load: {}", what, text, why);
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
