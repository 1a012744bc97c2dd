// metadata.json of a distributed checkpoint (dist_checkpoint.h): for every tensor its global
// shape, dtype and pieces (each a rectangular block: the file and key holding it, its offsets in
// the global tensor and its lengths), the layout that wrote it, and the step. Read from disk it is
// untrusted: parsing checks every field and that the pieces of each tensor lie inside it and cover
// it exactly once, and every error names the file and the tensor.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "forma/io/safetensors.h"

namespace forma::train {

inline constexpr const char* kCheckpointMetadataFile = "metadata.json";
inline constexpr const char* kDistCheckpointFormat = "forma-dist-checkpoint-1";

// The processes that wrote a checkpoint (the recipe's parallel section as it ran). Informative:
// any layout reads a checkpoint of any other.
struct CheckpointLayout {
  int world_size = 1;
  int pipeline_parallel = 1, data_parallel = 1, context_parallel = 1, tensor_parallel = 1;
  bool sequence_parallel = false;
  int zero_stage = 0;
};

struct PieceLocation {
  std::string file;  // relative to the checkpoint folder, e.g. "shards/rank-00001.safetensors"
  std::string key;   // the tensor's name inside that file
  std::vector<int64_t> offsets, lengths;  // the block [offsets, offsets + lengths) of the global tensor

  int64_t numel() const;
};

struct TensorEntry {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // global
  std::vector<PieceLocation> pieces;

  int64_t numel() const;
  uint64_t nbytes() const { return static_cast<uint64_t>(numel()) * dtype_size(dtype); }
};

struct CheckpointMetadata {
  int64_t step = 0;
  CheckpointLayout layout;
  std::map<std::string, TensorEntry> tensors;  // by global tensor name
};

// "{...}\n", pretty-printed.
std::string metadata_to_json(const CheckpointMetadata& metadata);
// Parses and validates (validate_tensor_coverage included); errors name `path` and the tensor.
CheckpointMetadata parse_checkpoint_metadata(const std::string& text, const std::string& path);

// One tensor's JSON object ({"dtype", "shape", "pieces": [{"file", "key", "offsets", "lengths"}]})
// and back: metadata.json and the per-rank index parts share it. Parsing checks the fields, the
// file names (relative, inside the folder) and that every piece lies inside the tensor; not the
// coverage. Errors name `where` and the tensor.
nlohmann::json tensor_entry_to_json(const TensorEntry& entry);
TensorEntry tensor_entry_from_json(const nlohmann::json& json, const std::string& where, const std::string& name);

// The pieces of `entry` cover the tensor exactly: no element missing, none written twice.
void validate_tensor_coverage(const TensorEntry& entry, const std::string& where, const std::string& name);

// "4x8" (a scalar: "scalar").
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace forma::train
