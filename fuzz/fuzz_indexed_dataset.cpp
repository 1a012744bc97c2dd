// Feeds a Megatron dataset (PREFIX.idx + PREFIX.bin) to IndexedDataset, then reads every sequence.
// Input layout: u32 little-endian n, then n bytes of .bin (n capped at what is there), then .idx.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "forma/core/error.h"
#include "forma/data/indexed_dataset.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t bin_size;
  std::memcpy(&bin_size, data, 4);
  data += 4, size -= 4;
  if (bin_size > size) bin_size = static_cast<uint32_t>(size);
  forma::fuzz::write_scratch("data.bin", data, bin_size);
  std::string idx = forma::fuzz::write_scratch("data.idx", data + bin_size, size - bin_size);
  try {
    forma::data::IndexedDataset ds(idx.substr(0, idx.size() - 4));
    int64_t tokens = 0;
    for (int64_t s = 0; s < ds.sequence_count(); ++s) tokens += static_cast<int64_t>(ds.sequence(s).size());
    if (tokens != ds.total_tokens()) __builtin_trap();
    for (int64_t d = 0; d <= ds.document_count(); ++d) (void)ds.document_begin(d);
  } catch (const forma::Error&) {
  }
  return 0;
}
