// What a training checkpoint holds, on top of the folder protocol of checkpoint_dir.h and the
// distributed format of dist_checkpoint.h:
//   metadata.json + shards/        the parameters (forma names) and the AdamW state ("optim/...",
//                                  checkpoint_slices.h), written in pieces by the ranks that own
//                                  them, readable under any layout
//   config.json, generation_config.json, tokenizer files, trainer_state.json   (rank 0)
//   model.safetensors              when tensor_parallel is 1 (rank 0 then holds the whole model):
//                                  the weights again under HF names, so that the folder stays a
//                                  Hugging Face model folder that other tools load as it is
//                                  (`forma generate --model CKPT`); under tensor parallelism
//                                  `forma ckpt merge` makes one
// Who writes: with tensor parallelism each tp rank its block of every split parameter and of its
// moments, the first tp rank the whole ones (and the step counts), all from data-parallel rank 0
// (which holds the whole optimizer state after Optimizer::gather_state_dict, ZeRO or not).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "forma/model/causal_lm.h"
#include "forma/parallel/tensor_parallel_specs.h"
#include "forma/train/dist_checkpoint_reader.h"
#include "forma/train/optimizer.h"
#include "forma/train/recipe.h"
#include "forma/train/trainer_state.h"

namespace forma::parallel {
class DeviceMesh;
}

namespace forma::train {

// How this process takes part in saving and loading; the default is one process.
struct CheckpointRole {
  int rank = 0;             // in the world
  CheckpointLayout layout;  // the world's layout (recorded in metadata.json)
  int tp_rank = 0;          // in its tensor-parallel group of layout.tensor_parallel ranks
  bool writes_pieces = true;  // data-parallel rank 0 (of context-parallel rank 0) of its tp group
  // The tensor-parallel plan's specs by parameter name; null: every parameter whole.
  const std::map<std::string, parallel::ShardSpec>* shards = nullptr;
  std::function<void()> barrier;  // the world's; empty in one process
};

// This process's role in `mesh` (null: one process) under `recipe`'s parallel section, with the
// tensor-parallel plan's specs when there is one (they must outlive the role).
CheckpointRole checkpoint_role(const parallel::DeviceMesh* mesh, const Recipe& recipe,
                               const std::map<std::string, parallel::ShardSpec>* shards = nullptr);

// Files resume needs; a checkpoint whose manifest lacks one is refused.
const std::vector<std::string>& required_checkpoint_files();

// Writes a complete checkpoint of `state.step` into CHECKPOINTS (every rank calls it, a collective
// through role.barrier); returns its folder. `optimizer_state` is AdamW::state_dict()'s map of this
// rank's parameters (Optimizer::gather_state_dict(): empty on ranks that do not write pieces).
// `write_extra`, when given, writes more files into the folder on rank 0 before it is committed
// (a LoRA run's adapter_config.json and adapter_model.safetensors).
std::string save_checkpoint(const std::string& checkpoints_dir, int keep_last, CausalLM& model,
                            const std::map<std::string, torch::Tensor>& optimizer_state, const TrainerState& state,
                            const std::string& tokenizer_path, const CheckpointRole& role = {},
                            const std::function<void(const std::string& dir)>& write_extra = {});

// Loads this rank's slices of the weights into `model` (whose architecture must match) and of the
// AdamW state into `optimizer`, whatever layout wrote them, and returns the trainer state. The
// checkpoint must have been verified (find_resumable_checkpoint). Throws forma::Error naming the file.
TrainerState load_checkpoint(const std::string& dir, CausalLM& model, Optimizer& optimizer,
                             const CheckpointRole& role = {});

// Copies this rank's slices of the checkpoint's parameters into `model`, which must have exactly
// the checkpoint's parameters (its optimizer states aside), with matching global shapes.
void load_checkpoint_weights(const DistCheckpointReader& reader, CausalLM& model, const CheckpointRole& role = {});

// generation_config.json for `config` (bos/eos ids), as HF's GenerationConfig.from_model_config.
void write_generation_config(const ModelConfig& config, const std::string& dir);

}  // namespace forma::train
