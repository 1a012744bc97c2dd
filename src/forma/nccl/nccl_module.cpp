// libforma_nccl.so: the NCCL process group, in the one file that includes CUDA's and NCCL's headers
// (the wheel's NCCL, the version libtorch_cuda was built with). See parallel/nccl_module.h.
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "forma/parallel/nccl_module.h"

extern "C" __attribute__((visibility("default"))) void forma_make_nccl_group(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, std::chrono::milliseconds timeout,
    c10::intrusive_ptr<c10d::Backend>& out) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  out = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

// The type the loader casts the symbol to must be this function's.
static_assert(std::is_same_v<decltype(&forma_make_nccl_group), forma::parallel::MakeNcclGroup>);
