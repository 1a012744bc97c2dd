#include "forma/infer/prompts_file.h"

#include <algorithm>

#include "forma/core/error.h"
#include "forma/eval/task_file.h"

namespace forma::infer {

// A named namespace: unity builds put several files of this directory in one translation unit.
namespace prompts_file_detail {

using nlohmann::json;

const char* const kKnownFields[] = {"prompt",      "prompt_ids", "id",    "max_new_tokens",
                                    "temperature", "top_k",      "top_p", "min_p",
                                    "repetition_penalty", "seed", "stop"};

// "FILE:LINE: field "NAME" " + what, as an Error.
template <typename... Args>
[[noreturn]] void field_error(const eval::TaskLine& line, const std::string& name,
                              fmt::format_string<Args...> what, Args&&... args) {
  fail("{}:{}: field \"{}\" {}", line.file, line.line, name, fmt::format(what, std::forward<Args>(args)...));
}

double number_value(const eval::TaskLine& line, const std::string& name) {
  const json& value = line.object.at(name);
  if (!value.is_number()) field_error(line, name, "must be a number, got {}", value.dump());
  return value.get<double>();
}

int64_t integer_value(const eval::TaskLine& line, const std::string& name, int64_t min, int64_t max) {
  const json& value = line.object.at(name);
  if (!value.is_number_integer()) field_error(line, name, "must be an integer, got {}", value.dump());
  // Unsigned JSON integers above INT64_MAX read as negative int64: compare as the JSON holds them.
  const bool in_range =
      value.is_number_unsigned()
          ? value.get<uint64_t>() <= static_cast<uint64_t>(max) && (min <= 0 || value.get<uint64_t>() >= static_cast<uint64_t>(min))
          : value.get<int64_t>() >= min && value.get<int64_t>() <= max;
  if (!in_range) field_error(line, name, "must be in [{}, {}], got {}", min, max, value.dump());
  return value.get<int64_t>();
}

std::vector<int32_t> prompt_ids_value(const eval::TaskLine& line, int64_t vocab_size) {
  const json& value = line.object.at("prompt_ids");
  if (!value.is_array() || value.empty()) field_error(line, "prompt_ids", "must be a non-empty list of token ids");
  std::vector<int32_t> ids;
  for (const json& id : value) {
    if (!id.is_number_integer()) field_error(line, "prompt_ids", "must hold integers, got {}", id.dump());
    const bool in_vocab = id.is_number_unsigned() ? id.get<uint64_t>() < static_cast<uint64_t>(vocab_size)
                                                  : id.get<int64_t>() >= 0 && id.get<int64_t>() < vocab_size;
    if (!in_vocab) field_error(line, "prompt_ids", "id {} is outside the model's vocabulary [0, {})", id.dump(), vocab_size);
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

std::vector<std::string> stop_value(const eval::TaskLine& line) {
  const json& value = line.object.at("stop");
  std::vector<std::string> out;
  auto add = [&](const json& s) {
    if (!s.is_string() || s.get<std::string>().empty()) {
      field_error(line, "stop", "must be a non-empty string or a list of them, got {}", s.dump());
    }
    out.push_back(s.get<std::string>());
  };
  if (value.is_array()) {
    for (const json& s : value) add(s);
  } else {
    add(value);
  }
  return out;
}

PromptLine parse_prompt_line(const eval::TaskLine& line, const GenerationConfig& defaults,
                             const tok::Tokenizer* tokenizer, int64_t vocab_size) {
  for (const auto& item : line.object.items()) {
    const auto known = std::find(std::begin(kKnownFields), std::end(kKnownFields), item.key());
    if (known == std::end(kKnownFields)) {
      field_error(line, item.key(), "is unknown (expected prompt or prompt_ids, id, max_new_tokens, temperature, "
                  "top_k, top_p, min_p, repetition_penalty, seed, stop)");
    }
  }
  PromptLine out;
  out.line = line.line;
  out.request.label = fmt::format("{}:{}", line.file, line.line);
  if (line.has("id")) out.id = line.object.at("id");
  check(line.has("prompt") != line.has("prompt_ids"), "{}:{}: give exactly one of the fields \"prompt\" and \"prompt_ids\"",
        line.file, line.line);
  if (line.has("prompt")) {
    const std::string text = line.string_field("prompt");
    if (!tokenizer) field_error(line, "prompt", "needs a tokenizer in the model folder; give \"prompt_ids\"");
    // HF's tokenizer(prompt) adds the special tokens of its post-processor (Llama's BOS), as --prompt.
    out.request.prompt_ids = tokenizer->encode(text, true);
    if (out.request.prompt_ids.empty()) field_error(line, "prompt", "encodes to no tokens");
  } else {
    out.request.prompt_ids = prompt_ids_value(line, vocab_size);
  }
  GenerationConfig& config = out.request.config;
  config = defaults;
  SamplingConfig& s = config.sampling;
  if (line.has("max_new_tokens")) config.max_new_tokens = integer_value(line, "max_new_tokens", 1, INT32_MAX);
  if (line.has("temperature")) s.temperature = number_value(line, "temperature");
  if (line.has("top_k")) s.top_k = integer_value(line, "top_k", 0, INT64_MAX);
  if (line.has("top_p")) s.top_p = number_value(line, "top_p");
  if (line.has("min_p")) s.min_p = number_value(line, "min_p");
  if (line.has("repetition_penalty")) s.repetition_penalty = number_value(line, "repetition_penalty");
  if (line.has("seed")) config.seed = static_cast<uint64_t>(integer_value(line, "seed", 0, INT64_MAX));
  if (line.has("stop")) config.stop_strings = stop_value(line);
  if (!config.stop_strings.empty() && !tokenizer) {
    fail("{}:{}: field \"stop\" needs a tokenizer in the model folder", line.file, line.line);
  }
  try {
    config.validate();  // its messages name the field (e.g. "sampling: top_p must be in (0, 1]")
  } catch (const Error& e) {
    fail("{}:{}: {}", line.file, line.line, e.what());
  }
  return out;
}

}  // namespace prompts_file_detail

std::vector<PromptLine> read_prompts_file(const std::string& path, const GenerationConfig& defaults,
                                          const tok::Tokenizer* tokenizer, int64_t vocab_size) {
  std::vector<PromptLine> prompts;
  eval::for_each_task_line(path, 0, [&](const eval::TaskLine& line) {
    prompts.push_back(prompts_file_detail::parse_prompt_line(line, defaults, tokenizer, vocab_size));
  });
  check(!prompts.empty(), "{}: no prompts (expected one JSON object per line)", path);
  return prompts;
}

nlohmann::json prompt_result_json(const PromptLine& prompt, size_t index, const GenerationResult& result) {
  nlohmann::json out = nlohmann::json::object();
  out["index"] = index;
  if (!prompt.id.is_null()) out["id"] = prompt.id;
  out["prompt_ids"] = prompt.request.prompt_ids;
  out["output_ids"] = result.ids;
  out["text"] = result.text;
  out["stop_reason"] = stop_reason_name(result.stop_reason);
  return out;
}

}  // namespace forma::infer
