// NCCL process groups, for runs whose tensors live on CUDA devices. The group itself is built in
// libforma_nccl.so (nccl_module.h), loaded the first time it is asked for, with LibTorch's CUDA
// library; a build against a LibTorch without CUDA has no module, and asking for NCCL is an error
// that says why.
#pragma once
#include <chrono>

#include "forma/parallel/device_mesh.h"

namespace forma::parallel {

// Whether libforma_nccl.so (and libtorch_cuda.so) load: asking loads them.
bool nccl_compiled();

// A group of `size` ranks over `store` (already prefixed for the group), with collectives timing out
// after `timeout`. The caller has made this rank's GPU the current device.
GroupPtr make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                         std::chrono::milliseconds timeout);

}  // namespace forma::parallel
