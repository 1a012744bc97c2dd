// Distributed checkpoints: every rank writes the pieces of the tensors it owns, in parallel; rank 0
// merges the ranks' descriptions into one metadata.json (dist_checkpoint_metadata.h); any layout
// reads any rectangular slice back (dist_checkpoint_reader.h). Pure: no process group in here. The
// caller runs the steps between barriers (train/checkpoint.cpp does, with the world's):
//
//   rank 0      tmp = prepare_checkpoint_dir(checkpoints, step)           (checkpoint_dir.h)
//   barrier     every rank knows tmp: checkpoint_temp_dir(checkpoints, step)
//   every rank  write_rank_pieces(tmp, rank, pieces)  -> shards/rank-RRRRR.safetensors + .json
//   barrier
//   rank 0      digests = merge_rank_indexes(tmp, world_size, layout, step)  -> metadata.json
//               the other files (config.json, trainer_state.json, ...)
//               finish_checkpoint(checkpoints, step, keep_last, digests): manifest last (the
//               commit), rename to step-NNNNNNN, `latest`
//   barrier
//
// A crash anywhere before the manifest leaves a .tmp- folder that is never loaded; the previous
// checkpoint stays `latest`. All ranks write into the same folder: the checkpoints folder must be
// on a file system they all see (as Megatron-LM and torch.distributed.checkpoint assume).
//
// Layout of a checkpoint folder:
//   metadata.json                    tensors, their global shapes, dtypes and pieces; layout; step
//   shards/rank-RRRRR.safetensors    the pieces rank RRRRR owned, each under its tensor's name
//   manifest.json                    size and checksum of every file, written last (checkpoint_dir.h)
// Each piece is a block [offsets, offsets + lengths) of its global tensor; the pieces of a tensor
// cover it exactly once (a tensor every rank holds whole is written by one of them: the caller
// decides which).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "forma/train/checkpoint_dir.h"
#include "forma/train/dist_checkpoint_metadata.h"

namespace forma::train {

// A block of a global tensor held by this rank: data.sizes() are its lengths.
struct TensorPiece {
  std::string name;                   // the global tensor's name
  std::vector<int64_t> global_shape;
  std::vector<int64_t> offsets;       // of data's first element in the global tensor
  torch::Tensor data;
};

// "shards/rank-00003.safetensors", "shards/rank-00003.json" (relative to the checkpoint folder).
std::string rank_shard_file(int rank);
std::string rank_index_file(int rank);

// Writes this rank's pieces (at most one per tensor name) into DIR/shards/rank-RRRRR.safetensors
// (none when there are no pieces) and its index part DIR/shards/rank-RRRRR.json (always: it is how
// rank 0 knows the rank finished), both atomically. Throws when a piece does not fit its global
// shape or a name repeats.
void write_rank_pieces(const std::string& dir, int rank, const std::vector<TensorPiece>& pieces);

// Reads the index parts of ranks 0..ranks-1 (every one must be there), checks that they agree on
// each tensor's shape and dtype and that the pieces cover every tensor exactly, then writes
// DIR/metadata.json and removes the index parts. Returns the digests the ranks computed of their
// shard files, for finish_checkpoint.
std::map<std::string, FileDigest> merge_rank_indexes(const std::string& dir, int ranks, const CheckpointLayout& layout,
                                                     int64_t step);

}  // namespace forma::train
