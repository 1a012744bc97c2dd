#include "forma/chat/chat_template.h"

#include <filesystem>

#include "forma/chat/jinja_eval.h"
#include "forma/core/error.h"
#include "forma/core/files.h"

namespace forma::chat {

namespace fs = std::filesystem;

nlohmann::ordered_json to_json(const std::vector<ChatMessage>& messages) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  return list;
}

nlohmann::ordered_json chat_context(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                            const nlohmann::ordered_json& extra_context) {
  check(messages.is_array(), "chat messages must be a JSON array");
  check(extra_context.is_object() || extra_context.is_null(), "chat template extra context must be a JSON object");
  // transformers always passes tools and documents (None when absent), so `tools is defined`
  // holds in every template.
  nlohmann::ordered_json context = {{"messages", messages},
                            {"tools", nullptr},
                            {"documents", nullptr},
                            {"add_generation_prompt", add_generation_prompt}};
  if (extra_context.is_object()) {
    for (const auto& [key, value] : extra_context.items()) context[key] = value;
  }
  return context;
}

std::string render_chat(const std::string& template_source, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra_context) {
  return render_chat_json(template_source, to_json(messages), add_generation_prompt, extra_context);
}

std::string render_chat_json(const std::string& template_source, const nlohmann::ordered_json& messages,
                             bool add_generation_prompt, const nlohmann::ordered_json& extra_context) {
  return JinjaTemplate(template_source).render(chat_context(messages, add_generation_prompt, extra_context));
}

ChatTemplate::ChatTemplate(std::string source, nlohmann::ordered_json special_tokens)
    : source_(std::move(source)),
      special_tokens_(std::move(special_tokens)),
      compiled_(std::make_shared<const JinjaTemplate>(source_)) {}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra_context) const {
  return render_json(to_json(messages), add_generation_prompt, extra_context);
}

std::string ChatTemplate::render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                      const nlohmann::ordered_json& extra_context) const {
  nlohmann::ordered_json extra = special_tokens_;
  if (extra_context.is_object()) {
    for (const auto& [key, value] : extra_context.items()) extra[key] = value;
  }
  return compiled_->render(chat_context(messages, add_generation_prompt, extra));
}

namespace {

nlohmann::ordered_json parse_json_file(const std::string& path) {
  std::string text = read_file(path);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::ordered_json::parse_error& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

// The chat_template field: a string, or a list of {"name", "template"} objects.
std::string pick_template(const nlohmann::ordered_json& field, const std::string& path, const std::string& name) {
  if (field.is_string()) return field.get<std::string>();
  check(field.is_array(), "{}: field 'chat_template' must be a string or a list of named templates", path);
  std::string names;
  for (size_t i = 0; i < field.size(); ++i) {
    const auto& entry = field[i];
    check(entry.is_object() && entry.contains("name") && entry["name"].is_string() && entry.contains("template") &&
              entry["template"].is_string(),
          "{}: chat_template[{}] must be an object with string fields 'name' and 'template'", path, i);
    if (entry["name"] == name) return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
  }
  fail("{}: no chat template named '{}' (the file has: {})", path, name, names);
}

nlohmann::ordered_json read_special_tokens(const nlohmann::ordered_json& config, const std::string& path) {
  static const char* const kTokens[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token"};
  auto token_text = [&](const nlohmann::ordered_json& v, const std::string& field) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    check(v.is_object() && v.contains("content") && v["content"].is_string(),
          "{}: field '{}' must be a string or an object with a string 'content'", path, field);
    return v["content"].get<std::string>();
  };
  nlohmann::ordered_json tokens = nlohmann::ordered_json::object();
  for (const char* key : kTokens) {
    if (config.contains(key) && !config[key].is_null()) tokens[key] = token_text(config[key], key);
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array() &&
      !config["additional_special_tokens"].empty()) {
    auto list = nlohmann::ordered_json::array();
    const auto& extra = config["additional_special_tokens"];
    for (size_t i = 0; i < extra.size(); ++i) {
      list.push_back(token_text(extra[i], "additional_special_tokens[" + std::to_string(i) + "]"));
    }
    tokens["additional_special_tokens"] = list;
  }
  return tokens;
}

}  // namespace

ChatTemplate load_chat_template(const std::string& tokenizer_config_json_path, const std::string& template_name) {
  const std::string& path = tokenizer_config_json_path;
  nlohmann::ordered_json config = parse_json_file(path);
  check(config.is_object(), "{}: expected a JSON object", path);
  std::string source;
  std::string source_path = path;
  if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    source = pick_template(config["chat_template"], path, template_name);
  } else {
    // Newer Hugging Face repositories keep the template in a file of its own.
    fs::path folder = fs::path(path).parent_path();
    if (fs::exists(folder / "chat_template.jinja")) {
      source_path = (folder / "chat_template.jinja").string();
      source = read_file(source_path);
    } else if (fs::exists(folder / "chat_template.json")) {
      source_path = (folder / "chat_template.json").string();
      nlohmann::ordered_json side = parse_json_file(source_path);
      check(side.is_object() && side.contains("chat_template"), "{}: no field 'chat_template'", source_path);
      source = pick_template(side["chat_template"], source_path, template_name);
    } else {
      fail("{}: no field 'chat_template' (and no chat_template.jinja or chat_template.json beside it)", path);
    }
  }
  try {
    return ChatTemplate(std::move(source), read_special_tokens(config, path));
  } catch (const TemplateRaisedError&) {
    throw;
  } catch (const Error& e) {
    fail("{}: {}", source_path, e.what());
  }
}

nlohmann::ordered_json load_special_tokens(const std::string& tokenizer_config_json_path) {
  nlohmann::ordered_json config = parse_json_file(tokenizer_config_json_path);
  check(config.is_object(), "{}: expected a JSON object", tokenizer_config_json_path);
  return read_special_tokens(config, tokenizer_config_json_path);
}

}  // namespace forma::chat
