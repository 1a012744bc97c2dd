#include "forma/train/checkpoint_slices.h"

#include <fmt/format.h>

#include "forma/core/error.h"

namespace forma::train {

std::string optimizer_tensor_name(const std::string& state_key) { return kOptimizerPrefix + state_key; }

TensorOwner checkpoint_tensor_owner(const std::string& name) {
  const std::string prefix = kOptimizerPrefix;
  if (name.rfind(prefix, 0) != 0) return {name, true};
  const std::string key = name.substr(prefix.size());
  for (const char* suffix : {".exp_avg", ".exp_avg_sq", ".step"}) {
    const std::string s = suffix;
    if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
      return {key.substr(0, key.size() - s.size()), s != ".step"};
    }
  }
  return {key, true};  // an unknown state: no parameter will claim it
}

RankSlice rank_slice(const std::vector<int64_t>& global_shape, const parallel::ShardSpec& spec, int tp, int tp_rank) {
  RankSlice slice;
  slice.global_shape = global_shape;
  slice.offsets.assign(global_shape.size(), 0);
  slice.lengths = global_shape;
  slice.owner = tp_rank % spec.copies == 0;
  if (spec.dim < 0) return slice;
  const parallel::PieceRange range = parallel::piece_range(spec, tp, tp_rank);
  slice.dim = spec.dim;
  slice.offsets[spec.dim] = range.start;
  slice.lengths[spec.dim] = range.length;
  slice.padding = range.padding;
  return slice;
}

RankSlice local_rank_slice(const std::vector<int64_t>& local_shape, const parallel::ShardSpec& spec, int tp,
                           int tp_rank, const std::string& name) {
  std::vector<int64_t> global = local_shape;
  if (spec.dim >= 0) {
    check(spec.dim < static_cast<int64_t>(global.size()), "checkpoint: '{}' of shape {} has no dimension {} to split",
          name, shape_text(local_shape), spec.dim);
    global[spec.dim] = spec.full_size;
  }
  RankSlice slice = rank_slice(global, spec, tp, tp_rank);
  if (spec.dim >= 0) {
    check(slice.lengths[spec.dim] + slice.padding == local_shape[spec.dim],
          "checkpoint: '{}' of shape {} is not tensor-parallel rank {}'s piece of {} rows", name,
          shape_text(local_shape), tp_rank, spec.full_size);
  }
  return slice;
}

TensorPiece rank_piece(const std::string& name, const torch::Tensor& local, const RankSlice& slice) {
  torch::Tensor data = local.detach();
  if (slice.dim >= 0) data = data.narrow(slice.dim, 0, slice.lengths[slice.dim]);
  return TensorPiece{name, slice.global_shape, slice.offsets, data};
}

torch::Tensor read_rank_slice(const DistCheckpointReader& reader, const std::string& name, const RankSlice& slice) {
  const TensorEntry& entry = reader.entry(name);
  check(entry.shape == slice.global_shape, "{}/{}: tensor '{}' has shape {}, but this model's is {}", reader.dir(),
        kCheckpointMetadataFile, name, shape_text(entry.shape), shape_text(slice.global_shape));
  torch::Tensor block = reader.read(name, slice.offsets, slice.lengths);
  if (slice.padding == 0) return block;
  std::vector<int64_t> pad_shape = block.sizes().vec();
  pad_shape[slice.dim] = slice.padding;
  return torch::cat({block, torch::zeros(pad_shape, block.options())}, slice.dim);
}

}  // namespace forma::train
