// What a training checkpoint holds, on top of the folder protocol of checkpoint_dir.h: a Hugging
// Face model folder (config.json, model.safetensors, generation_config.json, tokenizer files) that
// other tools load as it is, plus trainer_state.json and optimizer.safetensors (AdamW moments by
// parameter name) for an exact resume.
#pragma once
#include <string>
#include <vector>

#include "forma/model/causal_lm.h"
#include "forma/train/optimizer.h"
#include "forma/train/trainer_state.h"

namespace forma::train {

// Files resume needs; a checkpoint whose manifest lacks one is refused.
const std::vector<std::string>& required_checkpoint_files();

// Writes a complete checkpoint of `state.step` into OUTPUT/checkpoints; returns its folder.
// `optimizer_state` is AdamW::state_dict()'s map (Optimizer::gather_state_dict()).
std::string save_checkpoint(const std::string& checkpoints_dir, int keep_last, CausalLM& model,
                            const std::map<std::string, torch::Tensor>& optimizer_state, const TrainerState& state,
                            const std::string& tokenizer_path);

// Verifies the manifest, then loads weights into `model` (whose architecture must match),
// moments into `optimizer`, and returns the trainer state. Throws forma::Error naming the file.
TrainerState load_checkpoint(const std::string& dir, CausalLM& model, Optimizer& optimizer);

}  // namespace forma::train
