#include "forma/parallel/nccl_group.h"

#include "forma/core/error.h"

#ifdef FORMA_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace forma::parallel {

#ifdef FORMA_WITH_NCCL

bool nccl_compiled() { return true; }

GroupPtr make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                         std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

#else

bool nccl_compiled() { return false; }

GroupPtr make_nccl_group(const c10::intrusive_ptr<c10d::Store>&, int, int, std::chrono::milliseconds) {
  fail("NCCL: this forma was built against a LibTorch without CUDA; CUDA training needs the CUDA build");
}

#endif

}  // namespace forma::parallel
