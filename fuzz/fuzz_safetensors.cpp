// Feeds a whole .safetensors file (8-byte header length, JSON header, data) to SafetensorsFile, then
// reads every tensor's bytes as model/tensor_io.cpp does.
#include <cstddef>
#include <cstdint>

#include "forma/core/error.h"
#include "forma/io/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = forma::fuzz::write_scratch("model.safetensors", data, size);
  try {
    forma::SafetensorsFile file(path);
    uint64_t sum = 0;
    for (const std::string& name : file.names()) {
      const forma::TensorInfo& t = file.get(name);
      if (static_cast<size_t>(t.numel()) * forma::dtype_size(t.dtype) != t.nbytes) __builtin_trap();
      for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    }
    for (const auto& [k, v] : file.metadata()) sum += k.size() + v.size();
    volatile uint64_t sink = sum;
    (void)sink;
  } catch (const forma::Error&) {
  }
  return 0;
}
