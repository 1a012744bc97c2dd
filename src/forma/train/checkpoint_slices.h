// Where a tensor-parallel rank's tensors sit in a checkpoint's global tensors: the bridge between
// the tp specs (parallel/tensor_parallel_specs.h) and the distributed checkpoint's pieces
// (dist_checkpoint.h). Used by the trainer to save and load its local parameters and optimizer
// states under any layout, and by `forma ckpt reshard` to lay pieces out for another tp size.
//
// Checkpoint tensor names: a parameter under its forma name; its AdamW state (AdamW::state_dict's
// "<param>.exp_avg", ".exp_avg_sq", ".step") as "optim/<param>.exp_avg" and so on, the moments
// sliced like their parameter, the step count ([1], int64) whole.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "forma/parallel/tensor_parallel_specs.h"
#include "forma/train/dist_checkpoint.h"
#include "forma/train/dist_checkpoint_reader.h"

namespace forma::train {

inline constexpr const char* kOptimizerPrefix = "optim/";

// "optim/" + an AdamW::state_dict() key.
std::string optimizer_tensor_name(const std::string& state_key);
// The parameter a checkpoint tensor belongs to (itself, or the one an optimizer state is of), and
// whether the tensor is laid out like that parameter (the step count is not: it is whole).
struct TensorOwner {
  std::string param;
  bool sliced_like_param = true;
};
TensorOwner checkpoint_tensor_owner(const std::string& name);

// The block of a global tensor that one tp rank holds.
struct RankSlice {
  std::vector<int64_t> global_shape;
  std::vector<int64_t> offsets, lengths;  // the block, without padding
  int64_t dim = -1;                       // the split dimension; -1: whole
  int64_t padding = 0;                    // zero rows after the block along dim in the rank's tensor
  bool owner = true;  // the first tp rank holding this block: the one that writes it
};

// Rank `tp_rank` of `tp`'s block of a tensor of `global_shape` laid out as `spec`.
RankSlice rank_slice(const std::vector<int64_t>& global_shape, const parallel::ShardSpec& spec, int tp, int tp_rank);
// The same from the rank's local tensor shape (what parallelize_tensor left); throws naming `name`
// when the shape cannot be that rank's piece.
RankSlice local_rank_slice(const std::vector<int64_t>& local_shape, const parallel::ShardSpec& spec, int tp,
                           int tp_rank, const std::string& name);

// The piece of `local` to save (its padding dropped).
TensorPiece rank_piece(const std::string& name, const torch::Tensor& local, const RankSlice& slice);
// The rank's local tensor read from a checkpoint (padding rows zero). Throws naming the metadata
// when the checkpoint's tensor has another global shape.
torch::Tensor read_rank_slice(const DistCheckpointReader& reader, const std::string& name, const RankSlice& slice);

}  // namespace forma::train
