// NCCL process groups, for runs whose tensors live on CUDA devices. Kept in its own file: it is the
// one translation unit that needs CUDA's and NCCL's headers, and it compiles only when the LibTorch
// found has CUDA (FORMA_WITH_NCCL); elsewhere asking for NCCL is an error that says so.
#pragma once
#include <chrono>

#include "forma/parallel/device_mesh.h"

namespace forma::parallel {

bool nccl_compiled();

// A group of `size` ranks over `store` (already prefixed for the group), with collectives timing out
// after `timeout`. The caller has made this rank's GPU the current device.
GroupPtr make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                         std::chrono::milliseconds timeout);

}  // namespace forma::parallel
