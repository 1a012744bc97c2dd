// torch::Tensor <-> safetensors files (io/safetensors.h does the validated parsing). Used for model
// weights and for optimizer state in checkpoints.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "forma/io/safetensors.h"

namespace forma {

enum class LoadAs {
  FileDType,  // exactly the stored dtype
  Float32,    // floating tensors converted to fp32 (integer tensors keep their dtype)
};

// Every tensor of `path`, copied out of the memory map into CPU tensors.
std::map<std::string, torch::Tensor> load_tensors(const std::string& path,
                                                  LoadAs as = LoadAs::FileDType);
// One tensor of an open file, copied out (throws naming the file and tensor if absent).
torch::Tensor tensor_from(const SafetensorsFile& file, const std::string& name,
                          LoadAs as = LoadAs::FileDType);

// A tensor viewing the bytes of `name` inside the file's memory map, without copying them (a copy
// only when the stored bytes are not aligned for their element type). Read-only (the map is), and
// valid only while `file` lives: for streaming a file into other tensors.
torch::Tensor mapped_tensor(const SafetensorsFile& file, const std::string& name);

// Writes every tensor (any device; stored contiguous, in its own dtype) atomically.
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

torch::ScalarType to_scalar_type(DType dtype);
DType to_dtype(torch::ScalarType type);  // throws for types safetensors cannot hold

}  // namespace forma
