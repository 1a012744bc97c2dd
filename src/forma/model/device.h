// Where tensors live and compute: the --device flag of the commands and training.device of recipes.
// "auto" picks CUDA when a GPU is visible, else the CPU; under a launcher (forma launch, srun,
// mpirun) "cuda" and "auto" mean the GPU of the worker's local rank, as torchrun's users expect.
#pragma once
#include <torch/torch.h>

#include <string>

namespace forma {

// "cpu", "cuda", "cuda:N" or "auto". `local_rank` (>= 0 under a launcher) picks cuda:LOCAL_RANK for
// "cuda" and "auto". Errors name `what` (the flag or key): an unknown name, CUDA when no GPU is
// visible (or forma was built without it), an index beyond the visible GPUs.
torch::Device resolve_device(const std::string& text, const std::string& what, int local_rank = -1);

// Makes `device` the current CUDA device of this thread (NCCL and new CUDA tensors use it); nothing
// for the CPU.
void make_current(const torch::Device& device);

// Whether this LibTorch was built with CUDA (libtorch_cuda loaded), whether or not a GPU is present.
bool cuda_compiled();
// The CUDA runtime version LibTorch was built against, e.g. "13.0"; "" when cuda_compiled() is false.
std::string cuda_runtime_version();
// Visible CUDA devices (0 without a GPU or without CUDA).
int cuda_device_count();

}  // namespace forma
