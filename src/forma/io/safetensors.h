// Reader and writer of the safetensors format (8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the raw data section). Files are
// untrusted: every length, offset, dtype and shape is checked against the file before use, and
// every error names the file and the tensor. No LibTorch here: model/tensor_io.h builds tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "forma/core/files.h"

namespace forma {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

// Bytes per element of `dtype`.
size_t dtype_size(DType dtype);
// The safetensors spelling ("F32", "BF16", ...).
const char* dtype_name(DType dtype);
// Parses a safetensors spelling; false when unknown.
bool parse_dtype(const std::string& name, DType* out);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the memory map; valid while the file object lives
  size_t nbytes = 0;

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws forma::Error naming `path` (and the tensor).
  explicit SafetensorsFile(const std::string& path);

  const TensorInfo& get(const std::string& name) const;  // throws naming the file when absent
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_.path(); }
  // Lets the kernel drop the pages of [begin, begin + nbytes) from this process's resident memory
  // (they stay in the page cache and are read again if touched): streaming through a large file
  // then costs memory for what is in flight, not for the whole file. Ranges outside the file's
  // memory map are ignored.
  void release_pages(const void* begin, size_t nbytes) const { file_.release_pages(begin, nbytes); }

 private:
  MappedFile file_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  // Instead of `data`: writes bytes [begin, end) of the tensor into `out` (end - begin bytes),
  // called in order over the tensor in chunks of at most 16 MiB whose bounds are multiples of 8.
  // Lets a writer convert or copy tensors chunk by chunk, never holding a whole converted tensor.
  std::function<void(uint8_t* out, size_t begin, size_t end)> fill = nullptr;
};

// Writes `tensors` (in name order, 8-byte aligned header as the reference writer does) and
// `metadata` to `path` atomically. Throws when a tensor's nbytes disagrees with dtype and shape.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace forma
