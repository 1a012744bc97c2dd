#include "forma/parallel/nccl_group.h"

#include <dlfcn.h>

#include <filesystem>

#include "forma/core/error.h"
#include "forma/model/device.h"
#include "forma/parallel/nccl_module.h"

namespace forma::parallel {

namespace nccl_group_detail {

struct NcclModule {
  MakeNcclGroup make = nullptr;
  std::string error;
};

// libforma_nccl.so sits beside the executable (build/); it needs libtorch_cuda, loaded first.
const NcclModule& nccl_module() {
  static const NcclModule module = [] {
    NcclModule m;
#ifdef FORMA_WITH_CUDA
    if (!load_cuda_backend(&m.error)) return m;
    const auto path = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "libforma_nccl.so";
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      m.error = dlerror();
      return m;
    }
    m.make = reinterpret_cast<MakeNcclGroup>(dlsym(handle, kMakeNcclGroupSymbol));
    if (m.make == nullptr) m.error = dlerror();
#else
    m.error = "this forma was built against a LibTorch without CUDA; CUDA training needs the CUDA build";
#endif
    return m;
  }();
  return module;
}

}  // namespace nccl_group_detail

bool nccl_compiled() { return nccl_group_detail::nccl_module().make != nullptr; }

GroupPtr make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                         std::chrono::milliseconds timeout) {
  const auto& module = nccl_group_detail::nccl_module();
  check(module.make != nullptr, "NCCL: {}", module.error);
  GroupPtr group;
  module.make(store, rank, size, timeout, group);
  return group;
}

}  // namespace forma::parallel
