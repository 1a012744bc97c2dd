// What a LoRA configuration costs on a model, from its config alone (no weights built, so a 70B
// preset plans as fast as a tiny one): the adapted layers and the adapters' parameters, for
// `forma model info --lora-r R --lora-targets ...`. Matches apply_lora (lora_model.h) layer for
// layer; tests/peft compares the two on the fixtures.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "forma/model/config.h"
#include "forma/peft/lora_config.h"
#include "forma/peft/lora_model.h"

namespace forma::peft {

struct PlannedLinear {
  LinearModule module;
  int64_t in = 0, out = 0;
};

// Every linear layer the decoder of `config` has, with forma's and HF's names and its shape.
std::vector<PlannedLinear> planned_linears(const ModelConfig& config);

struct LoraPlan {
  int64_t layers = 0;           // adapted linear layers
  int64_t adapter_params = 0;   // A and B of all of them (modules_to_save not included)
};
// Errors as apply_lora's when nothing matches (naming `where`).
LoraPlan plan_lora(const ModelConfig& config, const LoraConfig& lora, const std::string& where);

}  // namespace forma::peft
