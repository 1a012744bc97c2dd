#include "forma/data/sft_records.h"

#include <fmt/format.h>

namespace forma::data {

namespace {

template <typename... Args>
[[noreturn]] void bad_record(fmt::format_string<Args...> format, Args&&... args) {
  throw RecordError(fmt::format(format, std::forward<Args>(args)...));
}

// The string at `key` of `object`; `path` names the object in messages ("" at the top level).
std::string sft_string_field(const nlohmann::json& object, const char* key, const std::string& path, bool required = true) {
  const std::string name = path.empty() ? key : path + "." + key;
  auto it = object.find(key);
  if (it == object.end() || (it->is_null() && !required)) {
    if (required) bad_record("missing field \"{}\"", name);
    return "";
  }
  if (!it->is_string()) bad_record("field \"{}\" is a {}, not a string", name, it->type_name());
  return it->get<std::string>();
}

const nlohmann::json& sft_array_field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) bad_record("missing field \"{}\"", key);
  if (!it->is_array()) bad_record("field \"{}\" is a {}, not an array", key, it->type_name());
  if (it->empty()) bad_record("field \"{}\" is empty", key);
  return *it;
}

void require_assistant(const SftRecord& record, const char* field) {
  for (const auto& m : record.messages)
    if (m["role"] == "assistant") return;
  bad_record("field \"{}\" has no assistant message (nothing to train on)", field);
}

void read_messages(const nlohmann::json& value, SftRecord* record) {
  const auto& list = sft_array_field(value, "messages");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = fmt::format("messages[{}]", i);
    if (!list[i].is_object()) bad_record("\"{}\" is a {}, not an object", path, list[i].type_name());
    std::string role = sft_string_field(list[i], "role", path);
    if (role.empty()) bad_record("field \"{}.role\" is empty", path);
    record->messages.push_back({{"role", role}, {"content", sft_string_field(list[i], "content", path)}});
  }
  require_assistant(*record, "messages");
}

// ShareGPT's speaker names, as FastChat and LLaMA-Factory read them.
const char* sharegpt_role(const std::string& from) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant" || from == "model") return "assistant";
  if (from == "system") return "system";
  if (from == "tool" || from == "observation" || from == "function") return "tool";
  return nullptr;
}

void read_sharegpt(const nlohmann::json& value, SftRecord* record) {
  const std::string system = sft_string_field(value, "system", "", false);
  if (!system.empty()) record->messages.push_back({{"role", "system"}, {"content", system}});
  const auto& list = sft_array_field(value, "conversations");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = fmt::format("conversations[{}]", i);
    if (!list[i].is_object()) bad_record("\"{}\" is a {}, not an object", path, list[i].type_name());
    std::string from = sft_string_field(list[i], "from", path);
    const char* role = sharegpt_role(from);
    if (!role) bad_record("field \"{}.from\" is \"{}\" (expected human, gpt, system or tool)", path, from);
    record->messages.push_back({{"role", role}, {"content", sft_string_field(list[i], "value", path)}});
  }
  require_assistant(*record, "conversations");
}

void read_alpaca(const nlohmann::json& value, SftRecord* record) {
  const std::string system = sft_string_field(value, "system", "", false);
  std::string user = sft_string_field(value, "instruction", "");
  const std::string input = sft_string_field(value, "input", "", false);
  if (!input.empty()) user += "\n\n" + input;
  if (!system.empty()) record->messages.push_back({{"role", "system"}, {"content", system}});
  record->messages.push_back({{"role", "user"}, {"content", user}});
  record->messages.push_back({{"role", "assistant"}, {"content", sft_string_field(value, "output", "")}});
}

SftFormat detect_sft_format(const nlohmann::json& value) {
  if (value.contains("messages")) return SftFormat::messages;
  if (value.contains("conversations")) return SftFormat::sharegpt;
  if (value.contains("instruction")) return SftFormat::alpaca;
  if (value.contains("prompt")) return SftFormat::prompt_completion;
  if (value.contains("text")) return SftFormat::text;
  bad_record("no field \"messages\", \"conversations\", \"instruction\", \"prompt\" or \"text\" (not a known SFT "
             "format)");
}

}  // namespace

SftFormat parse_sft_format(const std::string& name) {
  for (SftFormat f : {SftFormat::auto_detect, SftFormat::messages, SftFormat::sharegpt, SftFormat::alpaca,
                      SftFormat::prompt_completion, SftFormat::text}) {
    if (name == sft_format_name(f)) return f;
  }
  fail("unknown SFT format \"{}\" (expected auto, messages, sharegpt, alpaca, prompt_completion or text)", name);
}

const char* sft_format_name(SftFormat format) {
  switch (format) {
    case SftFormat::auto_detect: return "auto";
    case SftFormat::messages: return "messages";
    case SftFormat::sharegpt: return "sharegpt";
    case SftFormat::alpaca: return "alpaca";
    case SftFormat::prompt_completion: return "prompt_completion";
    case SftFormat::text: return "text";
  }
  return "?";
}

SftRecord parse_sft_record(const nlohmann::json& value, SftFormat format) {
  SftRecord record;
  if (value.is_string() && (format == SftFormat::auto_detect || format == SftFormat::text)) {
    record.format = SftFormat::text;  // a bare JSON string, as `forma data prepare` reads them
    record.completion = value.get<std::string>();
    if (record.completion.empty()) bad_record("the text is empty");
    return record;
  }
  if (!value.is_object()) bad_record("a {}, not a JSON object", value.type_name());
  record.format = format == SftFormat::auto_detect ? detect_sft_format(value) : format;
  switch (record.format) {
    case SftFormat::messages: read_messages(value, &record); break;
    case SftFormat::sharegpt: read_sharegpt(value, &record); break;
    case SftFormat::alpaca: read_alpaca(value, &record); break;
    case SftFormat::prompt_completion:
      record.prompt = sft_string_field(value, "prompt", "");
      record.completion = sft_string_field(value, "completion", "");
      if (record.completion.empty()) bad_record("field \"completion\" is empty (nothing to train on)");
      break;
    default:
      record.completion = sft_string_field(value, "text", "");
      if (record.completion.empty()) bad_record("field \"text\" is empty");
      break;
  }
  return record;
}

}  // namespace forma::data
