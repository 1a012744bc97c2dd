// Hugging Face model folders: config.json plus model.safetensors (or shards listed by
// model.safetensors.index.json). Loading checks every tensor: missing, unexpected or wrongly
// shaped ones are errors naming the tensor and the file.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "forma/model/causal_lm.h"

namespace forma {

// Reads `dir` (F32/F16/BF16 weights become fp32). Tied models may omit lm_head.weight (HF does).
CausalLM load_pretrained(const std::string& dir);

// Copies HF-named `weights` (from_hf applied by the caller or not: names are HF's) into `model`.
// `where` names the source in errors; `files` optionally maps HF names to the file holding them.
void load_hf_state_dict(CausalLM& model, const StateDict& hf_weights, const std::string& where,
                        const std::map<std::string, std::string>& files = {});

// Writes config.json and model.safetensors with HF names into `dir` (created if needed), each file
// atomically; a tied lm_head is omitted as HF does.
void save_pretrained(CausalLM& model, const std::string& dir);

// The model's parameters under HF names and layouts (gpt2: transformer.*, Conv1D transposed,
// c_attn fused), detached.
std::map<std::string, torch::Tensor> hf_state_dict(CausalLM& model);

}  // namespace forma
