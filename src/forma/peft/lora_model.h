// LoRA on a CausalLM: adapters put on the linear layers that a LoraConfig targets (matched by their
// Hugging Face module names, as PEFT matches them), the base frozen, and adapters saved and loaded
// in PEFT's format (adapter_config.json + adapter_model.safetensors, tensors named
// "base_model.model.<HF module>.lora_A.weight"), and merged into plain weights.
//
// gpt2: forma splits HF's fused attn.c_attn into q/k/v_proj. Targeting "c_attn" puts one adapter
// on each of the three (all three carry the HF name transformer.h.N.attn.c_attn). Saved, they are
// written as PEFT's one c_attn adapter of rank 3r with A = [A_q; A_k; A_v] and B block-diagonal
// (rank_pattern / alpha_pattern record that rank and keep the scaling), which computes exactly
// the same; a PEFT c_attn adapter loads into the three with A copied and B's rows split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "forma/model/causal_lm.h"
#include "forma/peft/lora_config.h"

namespace forma::peft {

// A linear layer of the model: its forma module name and the HF module it is (part `part` of
// `parts` for a fused HF module).
struct LinearModule {
  std::string name;     // "model.layers.0.self_attn.q_proj"
  std::string hf_name;  // "model.layers.0.self_attn.q_proj"; gpt2: "transformer.h.0.attn.c_attn"
  int part = 0, parts = 1;  // a part of a fused HF module (its rows as the weight rule lays them out)
  bool transposed = false;  // the HF weight is [in, out] (gpt2's Conv1D)
};
std::vector<LinearModule> linear_modules(CausalLM& model);
// The HF module of forma's module `name` in a model of `config` (gpt2's differ).
LinearModule hf_module(const ModelConfig& config, const std::string& name);

// Puts adapters on the targeted layers (initialised from LibTorch's default generator, in
// registration order), freezes every other parameter and unfreezes modules_to_save. Errors, naming
// `where`, when nothing matches, when a target is not a linear layer, or under tensor parallelism.
// Returns the number of adapted layers.
int64_t apply_lora(CausalLM& model, const LoraConfig& config, const std::string& where);

// Whether a parameter name is a LoRA weight (…lora_A.weight / …lora_B.weight).
bool is_lora_parameter(const std::string& name);

struct ParameterCounts {
  int64_t trainable = 0, frozen = 0;
};
ParameterCounts parameter_counts(CausalLM& model);

// The adapter (and modules_to_save) tensors under PEFT's names, detached. `full` (under tensor
// parallelism, where the model holds pieces): the full trainable tensors by forma parameter name
// (parallel::gather_trainable_parameters), written instead of the model's own.
std::map<std::string, torch::Tensor> adapter_state_dict(CausalLM& model, LoraConfig* config_out,
                                                        const LoraConfig& config, const StateDict* full = nullptr);
// Writes adapter_config.json and adapter_model.safetensors into `dir` (created), each atomically.
void save_adapter(CausalLM& model, const LoraConfig& config, const std::string& dir, const StateDict* full = nullptr);
// Reads a PEFT adapter folder into `model` (which has no adapters yet): applies its config, then
// copies every tensor, refusing missing, unexpected or wrongly shaped ones (naming the file).
LoraConfig load_adapter(CausalLM& model, const std::string& dir);

// Replaces every adapted layer by a plain Linear with W + scaling * B A (the base model, merged).
void merge_lora(CausalLM& model);

}  // namespace forma::peft
