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

// LibTorch's CUDA half (libtorch_cuda.so and the CUDA libraries it maps: about 360 MiB of resident
// memory) is not linked into forma: it is loaded at start-up where an NVIDIA GPU can be (its device
// nodes exist), and otherwise only when asked for (`--device cuda`, `forma env`). LibTorch keeps
// the first answer it gets about CUDA, so the start-up load comes before any tensor work.
// Returns whether libtorch_cuda.so is loaded (loading it if need be), with dlerror's text in `why`.
bool load_cuda_backend(std::string* why = nullptr);

// Whether this LibTorch was built with CUDA (its libtorch_cuda.so loads), whether or not a GPU is present.
bool cuda_compiled();
// The CUDA runtime version LibTorch was built against, e.g. "13.0"; "" when cuda_compiled() is false.
std::string cuda_runtime_version();
// Visible CUDA devices (0 without a GPU or without CUDA).
int cuda_device_count();

}  // namespace forma
