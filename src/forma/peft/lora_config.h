// LoRA's settings, with PEFT's meanings and defaults (peft.LoraConfig), read from a recipe's `lora`
// section (train/recipe.cpp) or from a PEFT adapter_config.json, and written back as one, so that
// `PeftModel.from_pretrained` loads what forma trains and forma loads what PEFT saves.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace forma::peft {

struct LoraConfig {
  bool enabled = false;  // a recipe's `lora` section is present
  int64_t r = 8;         // rank of A [r, in] and B [out, r]
  double alpha = 8;      // lora_alpha: scaling = alpha / r (alpha / sqrt(r) with use_rslora)
  double dropout = 0;    // lora_dropout on the adapter's input, in training only
  // Which linear layers get an adapter, by their Hugging Face module name ("model.layers.0.mlp.up_proj",
  // gpt2: "transformer.h.0.attn.c_proj"), as PEFT matches them: a list of names, each matching a
  // module whose name is it or ends with "." + it; or one regular expression (target_regex) that
  // must match the whole name; or "all-linear": every linear layer but the output projection.
  std::vector<std::string> target_modules;
  std::string target_regex;
  bool all_linear = false;
  bool use_rslora = false;
  // Modules trained whole and saved in the adapter (e.g. lm_head), PEFT's modules_to_save.
  std::vector<std::string> modules_to_save;
  // PEFT's init_lora_weights: "default" (true: A kaiming-uniform(a=sqrt(5)), B = 0, so a fresh
  // adapter leaves the model unchanged), "gaussian" (A ~ N(0, 1/r), B = 0) or "random" (false:
  // both as nn.Linear's default init, B non-zero; for tests).
  std::string init = "default";
  // PEFT's per-module overrides of r and alpha, keyed by a name suffix or regex (PEFT's get_pattern_key).
  std::map<std::string, int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  std::string base_model;  // base_model_name_or_path, informational
  // Recipe only: the dtype the frozen base is held and computes in during training, fp32 or bf16
  // (half the memory; the adapters and their AdamW state stay fp32).
  std::string base_dtype = "fp32";

  // r and alpha for the module `hf_name` (rank_pattern / alpha_pattern applied), and the scaling.
  int64_t rank_for(const std::string& hf_name) const;
  double alpha_for(const std::string& hf_name) const;
  double scaling_for(const std::string& hf_name) const;
};

// Checks the values (r >= 1, 0 <= dropout < 1, a target given, a known init); `where` names the
// source (the recipe section or the file) in errors.
void validate(const LoraConfig& config, const std::string& where);

// Whether PEFT's matching selects the module `hf_name` (`leaf` its last component); all-linear is
// decided by the caller, which knows which layer is the output projection.
bool matches_target(const LoraConfig& config, const std::string& hf_name);
// PEFT's modules_to_save match: the module `hf_name` is or lies inside a listed one.
bool matches_modules_to_save(const LoraConfig& config, const std::string& hf_name);

// adapter_config.json: reads PEFT's fields, refusing what forma does not implement (DoRA, LoRA
// biases, layer selections, target_parameters, ...) with an error naming the file and field.
LoraConfig lora_config_from_json(const nlohmann::json& json, const std::string& path);
LoraConfig load_adapter_config(const std::string& dir);
// PEFT's adapter_config.json for `config` (peft_type LORA, task_type CAUSAL_LM).
nlohmann::json adapter_config_json(const LoraConfig& config);

}  // namespace forma::peft
