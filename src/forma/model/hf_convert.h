// `forma convert`: rewrites a Hugging Face model folder in Hugging Face's own layout, with its
// floating tensors in another dtype and/or another sharding. Works on the safetensors files
// directly (tensor names, order and any tensor the model may not use are kept as they are), one
// chunk of one tensor at a time, so memory stays small whatever the model's size.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "forma/io/safetensors.h"

namespace forma {

struct ConvertOptions {
  // Floating tensors (F32/F16/BF16/F64) become this dtype; integer tensors keep theirs.
  // nullopt: every tensor keeps its dtype (a re-sharding).
  std::optional<DType> dtype;
  // Largest shard, in bytes, as HF's max_shard_size: a tensor larger than this gets a shard of its
  // own. One shard is written as model.safetensors without an index. HF save_pretrained's default.
  uint64_t max_shard_bytes = 5'000'000'000ull;
};

struct ConvertResult {
  size_t tensors = 0;
  uint64_t total_bytes = 0;                // the index's metadata.total_size
  std::vector<std::string> weight_files;   // file names written, in order
  std::vector<std::string> copied_files;   // other files copied from the source folder
};

// Reads `from` (config.json, model.safetensors or an index with its shards) and writes `to`:
// config.json (torch_dtype updated), model.safetensors or model-0000i-of-0000N.safetensors plus
// model.safetensors.index.json ({"metadata": {"total_size": N}, "weight_map": {...}}), and every
// other file of `from` (tokenizer files, generation_config.json, README, ...) except weights in
// other formats. `to` must not exist or be empty; it is written as a temporary sibling folder
// renamed at the end, so a failure leaves no half-written `to`. Errors name the file and field.
ConvertResult convert_hf_folder(const std::string& from, const std::string& to, const ConvertOptions& options);

// "bf16", "f16", "f32" (also "bfloat16", "float16", "float32"); errors name `what`.
DType parse_float_dtype(const std::string& text, const std::string& what);
// HF's torch_dtype spelling: "bfloat16", "float16", "float32", "float64".
const char* torch_dtype_name(DType dtype);
// A size as HF's max_shard_size: "2GB" (10^9), "500MB", "10KB", "1GiB" (2^30), "512MiB", "1KiB",
// "1000B" or a plain byte count; case-insensitive. Errors name `what`.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace forma
