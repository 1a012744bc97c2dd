// Offline conversions of a training checkpoint (train/checkpoint.h), in one process, no process
// group: `forma ckpt merge` and `forma ckpt reshard`. Both read the source through
// DistCheckpointReader (manifest verified first) and write their output folder atomically.
#pragma once
#include <string>

#include "forma/train/dist_checkpoint_metadata.h"

namespace forma::train {

// One Hugging Face model folder at `to` (which must not exist, or be empty): a model built from the
// checkpoint's config.json and filled with the assembled full tensors, written by save_pretrained
// (HF names and layouts: gpt2's fused c_attn, Conv1D), plus generation_config.json and the
// tokenizer files. Returns the number of parameters written.
size_t merge_checkpoint(const std::string& dir, const std::string& to);

// The checkpoint the trainer would have written under `layout` at the same step: every tensor's
// pieces cut as that layout's ranks hold them (parallel/tensor_parallel_specs.h for its
// tensor_parallel), metadata.json recording it, model.safetensors when tensor_parallel is 1,
// the other files copied, a manifest. `to` must not exist, or be empty. The layout's sizes must
// fit the model (check_tensor_parallel_config) and multiply to its world_size.
void reshard_checkpoint(const std::string& dir, const std::string& to, const CheckpointLayout& layout);

}  // namespace forma::train
