// Feeds a distributed checkpoint's metadata.json to parse_checkpoint_metadata (fields, file names,
// pieces inside and covering each tensor), then writes it back and parses that again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "forma/core/error.h"
#include "forma/train/dist_checkpoint_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto metadata = forma::train::parse_checkpoint_metadata(text, "metadata.json");
    for (const auto& [name, entry] : metadata.tensors) (void)entry.nbytes();
    auto again = forma::train::parse_checkpoint_metadata(forma::train::metadata_to_json(metadata), "round trip");
    if (again.tensors.size() != metadata.tensors.size()) __builtin_trap();
  } catch (const forma::Error&) {
  }
  return 0;
}
