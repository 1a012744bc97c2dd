#include "forma/train/dist_checkpoint_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/tensor_io.h"
#include "forma/train/checkpoint_dir.h"

namespace forma::train {

namespace fs = std::filesystem;

DistCheckpointReader::DistCheckpointReader(const std::string& dir, bool verify)
    : dir_(dir), metadata_path_((fs::path(dir) / kCheckpointMetadataFile).string()) {
  check(fs::is_directory(dir), "{}: not a checkpoint folder", dir);
  if (verify) verify_checkpoint(dir, {kCheckpointMetadataFile});
  check(fs::is_regular_file(metadata_path_),
        "{}: no {} (not a distributed checkpoint: a folder written by an older forma, or an interrupted one)", dir,
        kCheckpointMetadataFile);
  metadata_ = parse_checkpoint_metadata(read_file(metadata_path_), metadata_path_);
  std::map<std::string, bool> exists;
  for (const auto& [name, entry] : metadata_.tensors) {
    for (const auto& piece : entry.pieces) {
      auto [it, inserted] = exists.emplace(piece.file, false);
      if (inserted) it->second = fs::is_regular_file(fs::path(dir) / piece.file);
      check(it->second, "{}: tensor '{}': its shard file {} is missing", metadata_path_, name,
            (fs::path(dir) / piece.file).string());
    }
  }
}

const TensorEntry& DistCheckpointReader::entry(const std::string& name) const {
  auto it = metadata_.tensors.find(name);
  check(it != metadata_.tensors.end(), "{}: the checkpoint has no tensor '{}'", metadata_path_, name);
  return it->second;
}

const SafetensorsFile& DistCheckpointReader::shard(const std::string& file) const {
  auto& open = shards_[file];
  if (!open) open = std::make_unique<SafetensorsFile>((fs::path(dir_) / file).string());
  return *open;
}

torch::Tensor DistCheckpointReader::read(const std::string& name) const {
  const TensorEntry& e = entry(name);
  return read(name, std::vector<int64_t>(e.shape.size(), 0), e.shape);
}

torch::Tensor DistCheckpointReader::read(const std::string& name, const std::vector<int64_t>& offsets,
                                         const std::vector<int64_t>& lengths) const {
  const TensorEntry& e = entry(name);
  const size_t rank = e.shape.size();
  bool inside = offsets.size() == rank && lengths.size() == rank;
  for (size_t d = 0; inside && d < rank; ++d) {
    inside = offsets[d] >= 0 && lengths[d] >= 0 && offsets[d] + lengths[d] <= e.shape[d];
  }
  check(inside, "{}: the slice at [{}] of [{}] lies outside tensor '{}' of shape {}", metadata_path_,
        fmt::join(offsets, ", "), fmt::join(lengths, ", "), name, shape_text(e.shape));
  torch::Tensor out = torch::empty(lengths, torch::TensorOptions().dtype(to_scalar_type(e.dtype)));
  int64_t filled = 0;
  for (const auto& piece : e.pieces) {
    // The intersection of the slice with the piece, per dimension.
    std::vector<int64_t> lo(rank), hi(rank);
    bool empty = false;
    for (size_t d = 0; d < rank; ++d) {
      lo[d] = std::max(offsets[d], piece.offsets[d]);
      hi[d] = std::min(offsets[d] + lengths[d], piece.offsets[d] + piece.lengths[d]);
      empty = empty || lo[d] >= hi[d];
    }
    if (empty) continue;
    const SafetensorsFile& file = shard(piece.file);
    check(file.contains(piece.key), "{}: has no tensor '{}' (a piece of '{}' by {})", file.path(), piece.key, name,
          metadata_path_);
    const TensorInfo& info = file.get(piece.key);
    check(info.dtype == e.dtype, "{}: tensor '{}' is {}, but {} says {}", file.path(), piece.key,
          dtype_name(info.dtype), metadata_path_, dtype_name(e.dtype));
    check(info.shape == piece.lengths, "{}: tensor '{}' has shape {}, but {} says its piece of '{}' is {}",
          file.path(), piece.key, shape_text(info.shape), metadata_path_, name, shape_text(piece.lengths));
    torch::Tensor source = mapped_tensor(file, piece.key);
    torch::Tensor target = out;
    for (size_t d = 0; d < rank; ++d) {
      const auto dim = static_cast<int64_t>(d);
      source = source.narrow(dim, lo[d] - piece.offsets[d], hi[d] - lo[d]);
      target = target.narrow(dim, lo[d] - offsets[d], hi[d] - lo[d]);
    }
    target.copy_(source);
    // The copied pages leave this process's resident memory (they stay in the page cache).
    int64_t last = 0;
    for (int64_t d = 0; d < source.dim(); ++d) last += (source.size(d) - 1) * source.stride(d);
    file.release_pages(source.data_ptr(), static_cast<size_t>(last + 1) * source.element_size());
    filled += source.numel();
  }
  // The pieces cover the tensor exactly (checked when the metadata was parsed).
  check(filled == out.numel(), "{}: tensor '{}': pieces filled {} of the {} elements of the slice", metadata_path_,
        name, filled, out.numel());
  return out;
}

}  // namespace forma::train
