// Reads a distributed checkpoint (dist_checkpoint.h) under any layout: any rectangular slice of any
// tensor, assembled from the pieces that overlap it, each copied out of its shard file's memory map
// (io/safetensors.h validates the files), so that a rank reads only what it holds. The folder is
// untrusted: a malformed metadata.json, a piece outside its tensor, a missing shard file or key, a
// dtype or shape that differs from the metadata are forma::Errors naming the file and the tensor.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "forma/io/safetensors.h"
#include "forma/train/dist_checkpoint_metadata.h"

namespace forma::train {

class DistCheckpointReader {
 public:
  // Opens DIR/metadata.json. With `verify`, the manifest is checked first (verify_checkpoint: the
  // commit marker, every file's size and checksum); the trainer passes false after
  // find_resumable_checkpoint has just done so. Every shard file the metadata names must exist.
  explicit DistCheckpointReader(const std::string& dir, bool verify = true);

  const std::string& dir() const { return dir_; }
  const CheckpointMetadata& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return metadata_.tensors.count(name) > 0; }
  // Throws naming metadata.json when the checkpoint has no tensor `name`.
  const TensorEntry& entry(const std::string& name) const;

  // The block [offsets, offsets + lengths) of tensor `name`, in its stored dtype.
  torch::Tensor read(const std::string& name, const std::vector<int64_t>& offsets,
                     const std::vector<int64_t>& lengths) const;
  // The whole tensor.
  torch::Tensor read(const std::string& name) const;

 private:
  const SafetensorsFile& shard(const std::string& file) const;  // opened on first use

  std::string dir_, metadata_path_;
  CheckpointMetadata metadata_;
  mutable std::map<std::string, std::unique_ptr<SafetensorsFile>> shards_;
};

}  // namespace forma::train
