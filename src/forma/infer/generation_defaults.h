// Generation defaults that come with a model folder: HF's generation_config.json (sampling fields,
// max_new_tokens, eos_token_id, stop_strings), with config.json's eos_token_id and the tokenizer's
// EOS token as fallbacks for the EOS ids. Command-line flags override the result.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "forma/infer/generate.h"
#include "forma/model/config.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

// Applies the fields of a parsed generation_config.json to `config`. As in HF, sampling happens
// only with "do_sample": true; then a missing top_k means HF's default 50 and a missing
// temperature 1.0. Without do_sample the config is greedy (temperature 0). Fields that are null
// are ignored. `source` names the file in errors (wrong type or range of a field).
void apply_generation_config_json(const nlohmann::json& json, const std::string& source,
                                  GenerationConfig* config);

// Greedy defaults, updated from `model_dir`/generation_config.json when it exists. When that file
// names no eos_token_id, the EOS ids come from config.json (`model_config`), else from the
// tokenizer (may be null).
GenerationConfig load_generation_defaults(const std::string& model_dir, const ModelConfig& model_config,
                                          const tok::Tokenizer* tokenizer);

}  // namespace forma::infer
