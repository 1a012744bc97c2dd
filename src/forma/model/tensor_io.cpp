#include "forma/model/tensor_io.h"

#include <cstring>

#include "forma/core/error.h"

namespace forma {

namespace {

struct TypePair {
  DType dtype;
  torch::ScalarType scalar;
};

const TypePair kTypes[] = {
    {DType::F32, torch::kFloat},  {DType::F16, torch::kHalf},  {DType::BF16, torch::kBFloat16},
    {DType::F64, torch::kDouble}, {DType::I64, torch::kLong},  {DType::I32, torch::kInt},
    {DType::I16, torch::kShort},  {DType::I8, torch::kChar},   {DType::U8, torch::kByte},
    {DType::BOOL, torch::kBool},
};

}  // namespace

torch::ScalarType to_scalar_type(DType dtype) {
  for (const auto& t : kTypes) {
    if (t.dtype == dtype) return t.scalar;
  }
  fail("no torch type for dtype {}", dtype_name(dtype));
}

DType to_dtype(torch::ScalarType type) {
  for (const auto& t : kTypes) {
    if (t.scalar == type) return t.dtype;
  }
  fail("safetensors cannot store tensors of type {}", c10::toString(type));
}

torch::Tensor tensor_from(const SafetensorsFile& file, const std::string& name, LoadAs as) {
  const TensorInfo& info = file.get(name);
  // memcpy rather than from_blob: the mapped data need not be aligned for the element type.
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(to_scalar_type(info.dtype)));
  if (info.nbytes) std::memcpy(t.data_ptr(), info.data, info.nbytes);
  if (as == LoadAs::Float32 && t.is_floating_point() && t.scalar_type() != torch::kFloat) {
    t = t.to(torch::kFloat);
  }
  return t;
}

torch::Tensor mapped_tensor(const SafetensorsFile& file, const std::string& name) {
  const TensorInfo& info = file.get(name);
  if (reinterpret_cast<uintptr_t>(info.data) % dtype_size(info.dtype) != 0) return tensor_from(file, name);
  // from_blob wants a mutable pointer; the map is PROT_READ, so writes would fault, not corrupt.
  return torch::from_blob(const_cast<uint8_t*>(info.data), info.shape,
                          torch::TensorOptions().dtype(to_scalar_type(info.dtype)));
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path, LoadAs as) {
  SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : file.names()) out[name] = tensor_from(file, name, as);
  return out;
}

void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep_alive;
  std::vector<TensorToWrite> entries;
  keep_alive.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    check(tensor.defined(), "{}: tensor '{}' is undefined", path, name);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    keep_alive.push_back(t);
    entries.push_back({name, to_dtype(t.scalar_type()), t.sizes().vec(), t.data_ptr(),
                       static_cast<size_t>(t.numel()) * t.element_size()});
  }
  write_safetensors(path, entries, metadata);
}

}  // namespace forma
