// Which piece of every parameter each tensor-parallel rank holds, as pure functions of the model
// config and the tp size: no process group, no model. parallelize_tensor applies them to a live
// model; distributed checkpoints use them to know which slice a rank saves or loads, and `forma
// ckpt reshard` to lay a checkpoint out for another tp size offline. One source of truth for all.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "forma/model/config.h"

namespace forma::parallel {

// How one parameter's full tensor is laid out over the tp group.
struct ShardSpec {
  int64_t dim = -1;        // the dimension the full tensor is split along; -1: whole on every rank
  int64_t full_size = 0;   // the full tensor's size along dim (the vocabulary without padding)
  int64_t copies = 1;      // tp ranks holding the same piece: 1 when split, tp when whole,
                           // tp / num_key_value_heads for replicated key-value heads
  bool grad_is_partial = false;  // each copy's gradient is a partial sum of the true one
};

// Throws forma::Error naming the config field when `tp` cannot split the model: heads, key-value
// heads, intermediate_size (and the experts'), or a vocabulary smaller than the padding needs.
void check_tensor_parallel_config(const ModelConfig& config, int tp);

// The spec of a parameter that stays whole on each of the `tp` ranks. With sequence parallel such
// a parameter sees only this rank's tokens, so its gradient is partial (tp > 1).
ShardSpec whole_shard_spec(int tp, bool sequence_parallel);

// By forma parameter name, every parameter whose spec is not whole_shard_spec(tp, sequence_parallel):
// Megatron's scheme of tensor_parallel_model.h (q/k/v, gate/up and the experts' w1/w3
// column-parallel with their biases, o_proj/down_proj/w2 row-parallel, the vocabulary split over
// embed_tokens and an untied lm_head, the MoE router whole with a whole gradient). Checks the
// config first (check_tensor_parallel_config).
std::map<std::string, ShardSpec> tensor_parallel_shard_specs(const ModelConfig& config, int tp,
                                                             bool sequence_parallel);

// A LoRA adapter's specs {A [r, in], B [out, r]} on a linear layer whose weight [out, in] is laid
// out as `base` (peft/lora_linear.h). Column-parallel (base split along 0): B's rows follow the
// base's, A is whole with a partial gradient (each rank's B rows contribute to it). Row-parallel
// (split along 1): A's columns follow the base's, B is whole with a partial gradient (each rank's
// input features contribute to it). A whole base: both as the base.
struct LoraSpecs {
  ShardSpec a, b;
};
LoraSpecs lora_shard_specs(const ShardSpec& base, int tp);

// What rank `rank` of `tp` holds of a split tensor along spec.dim: the full tensor's
// [start, start + length), followed by `padding` zero rows that are no part of it (only the last
// pieces of a vocabulary that tp does not divide). tp / copies distinct pieces, rank r holding
// piece r / copies, each ceil(full_size / pieces) long. For a whole spec: [0, full_size), no padding.
struct PieceRange {
  int64_t start = 0, length = 0, padding = 0;
};
PieceRange piece_range(const ShardSpec& spec, int tp, int rank);

}  // namespace forma::parallel
