// The records of supervised fine-tuning data, in the formats people have, read into one shape:
//   messages           {"messages": [{"role": "system"|"user"|"assistant"|..., "content": "..."}, ...]}
//                      (OpenAI's chat format; TRL's "conversational" datasets)
//   sharegpt           {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}
//                      (also "user"/"assistant"; an optional top-level "system" string)
//   alpaca             {"instruction": "...", "input": "...", "output": "..."} (input and an optional
//                      "system" may be missing or empty): a user turn of the instruction, a blank line
//                      and the input, then an assistant turn of the output, as LLaMA-Factory renders it
//   prompt_completion  {"prompt": "...", "completion": "..."}: plain text, no chat template; the
//                      completion is trained on (TRL's "prompt-completion" datasets)
//   text               {"text": "..."} or a text file: plain text, every token trained on
// `auto` picks the format of each record by its fields, in the order above. A record that does not
// fit its format is a RecordError naming the field (e.g. `messages[2].content`); the caller adds
// the file and line.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "forma/core/error.h"

namespace forma::data {

enum class SftFormat { auto_detect, messages, sharegpt, alpaca, prompt_completion, text };

// "auto", "messages", "sharegpt", "alpaca", "prompt_completion", "text"; else a forma::Error.
SftFormat parse_sft_format(const std::string& name);
const char* sft_format_name(SftFormat format);

struct SftRecord {
  SftFormat format = SftFormat::text;  // never auto_detect
  // Chat formats (messages, sharegpt, alpaca): [{"role": ..., "content": ...}, ...] with OpenAI's
  // role names; at least one "assistant" message, whose turns are the ones trained on.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::string prompt;      // prompt_completion: not trained on
  std::string completion;  // prompt_completion: trained on; text: the whole text
  bool is_chat() const {
    return format == SftFormat::messages || format == SftFormat::sharegpt || format == SftFormat::alpaca;
  }
};

// What is wrong with one record (without file and line, which the reader adds).
struct RecordError : Error {
  using Error::Error;
};

// One JSON record as `format` (auto_detect: by its fields). Throws RecordError.
SftRecord parse_sft_record(const nlohmann::json& value, SftFormat format);

}  // namespace forma::data
