// The prompts file of `forma generate --prompts-file FILE`: JSON lines (blank lines skipped), one
// object per prompt:
//   {"prompt": "text"} or {"prompt_ids": [1, 2, 3]}   exactly one of the two
//   optional settings, named as GenerationConfig / the flags: "max_new_tokens", "temperature",
//   "top_k", "top_p", "min_p", "repetition_penalty", "seed", "stop" (a string or a list)
//   optional "id": any JSON value, echoed in the output line
// Any other field, a wrong type or an out-of-range value is a forma::Error "FILE:LINE: field ...".
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "forma/infer/batch_generate.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

struct PromptLine {
  int64_t line = 0;    // 1-based line of the file
  nlohmann::json id;   // the line's "id", null when absent
  BatchRequest request;  // label "FILE:LINE"
};

// Each line's settings start from `defaults` (the folder's generation_config.json and the flags).
// "prompt" text is encoded with `tokenizer` (special tokens added, as --prompt does); without a
// tokenizer only "prompt_ids" lines are accepted. Ids must be < vocab_size.
std::vector<PromptLine> read_prompts_file(const std::string& path, const GenerationConfig& defaults,
                                          const tok::Tokenizer* tokenizer, int64_t vocab_size);

// One output line: {"index", "id" (when given), "prompt_ids", "output_ids", "text", "stop_reason"}.
nlohmann::json prompt_result_json(const PromptLine& prompt, size_t index, const GenerationResult& result);

}  // namespace forma::infer
