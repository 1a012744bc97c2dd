// The boundary between forma and libforma_nccl.so, the module that holds the NCCL process group
// (nccl_module.cpp). It is loaded at run time (nccl_group.cpp) so that forma does not link
// libtorch_cuda, whose CUDA libraries a CPU run would map for nothing (model/device.h).
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace forma::parallel {

// Builds a ProcessGroupNCCL of `size` ranks over `store` into `out`.
using MakeNcclGroup = void (*)(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                               std::chrono::milliseconds timeout, c10::intrusive_ptr<c10d::Backend>& out);
inline constexpr const char* kMakeNcclGroupSymbol = "forma_make_nccl_group";

}  // namespace forma::parallel
