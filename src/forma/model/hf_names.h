// Applies an architecture's WeightRules (architecture.h): a checkpoint's HF tensors to forma's
// parameter names and back. Tensors no rule names pass through unchanged (the loader then reports
// any that match no parameter), so nothing is skipped silently.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "forma/model/architecture.h"

namespace forma {

using StateDict = std::map<std::string, torch::Tensor>;

// HF names -> forma names. Returns views of the inputs (transposes, slices), so that a memory-mapped
// checkpoint is never held twice; only the parts of a grouped fused tensor (WeightRule::groups) are copies.
StateDict from_hf_names(const StateDict& hf, const ModelConfig& config);
// forma names -> HF names (fused tensors concatenated, Conv1D weights transposed back).
StateDict to_hf_names(const StateDict& forma, const ModelConfig& config);

// The HF module holding forma's module `name` ("model.layers.0.self_attn.q_proj"): its HF name and,
// for a fused one (GPT-2's c_attn), which of how many parts along the output rows this one is.
struct HfModule {
  std::string hf_name;
  int part = 0, parts = 1;
  bool grouped = false;     // the parts interleave in groups (WeightRule::groups): not one block of rows
  bool transposed = false;  // HF stores the weight [in, out] (Conv1D: gpt2's c_attn)
};
HfModule hf_module_of(const ModelConfig& config, const std::string& name);
// The same for many modules at once: the rules are expanded per layer once, not once per name (a
// 256-expert model has tens of thousands of linears).
std::vector<HfModule> hf_modules_of(const ModelConfig& config, const std::vector<std::string>& names);

}  // namespace forma
