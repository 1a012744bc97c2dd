// Chat templates as Hugging Face models ship them: the Jinja `chat_template` of
// tokenizer_config.json rendered the way transformers' apply_chat_template renders it
// (variables messages, tools=None, documents=None, add_generation_prompt, the special tokens,
// plus any extra keyword arguments), by forma's own Jinja interpreter (jinja_*.h).
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

// JSON values are nlohmann::ordered_json: templates print dicts (tool schemas, arguments) in their
// insertion order, as Python does. A plain nlohmann::json converts implicitly, with sorted keys.
namespace forma::chat {

class JinjaTemplate;

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool", ...
  std::string content;
};

// The variables transformers passes to a chat template. `extra_context` (an object) adds to or
// overrides them: bos_token, eos_token, tools, date_string, enable_thinking, ...
nlohmann::ordered_json chat_context(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                            const nlohmann::ordered_json& extra_context);
nlohmann::ordered_json to_json(const std::vector<ChatMessage>& messages);

// Renders a template source once. Syntax and runtime errors are forma::Error naming the template
// line and column; raise_exception("...") in the template throws TemplateRaisedError (a
// forma::Error) carrying the template's message.
std::string render_chat(const std::string& template_source, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object());
// Same, for messages as JSON objects (tool_calls, reasoning_content, list contents, ...).
std::string render_chat_json(const std::string& template_source, const nlohmann::ordered_json& messages,
                             bool add_generation_prompt,
                             const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object());

// A model's chat template, parsed once, with its special tokens.
class ChatTemplate {
 public:
  ChatTemplate(std::string source, nlohmann::ordered_json special_tokens);

  const std::string& source() const { return source_; }
  // {"bos_token": "<s>", "eos_token": "</s>", ...}: only the tokens the config sets.
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }

  // Special tokens first, then `extra_context` on top (it may override them).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object()) const;
  std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object()) const;

 private:
  std::string source_;
  nlohmann::ordered_json special_tokens_;
  std::shared_ptr<const JinjaTemplate> compiled_;
};

// Reads tokenizer_config.json: `chat_template` as a string or as the list-of-named-templates form
// ([{"name": "default", "template": "..."}, ...]; `template_name` picks one), falling back to a
// chat_template.jinja or chat_template.json beside it; special tokens as strings or
// {"content": ...} objects. Errors name the file and field.
ChatTemplate load_chat_template(const std::string& tokenizer_config_json_path,
                                const std::string& template_name = "default");

// Only the special tokens of tokenizer_config.json, as ChatTemplate::special_tokens() holds them
// (for a template that comes from elsewhere, e.g. `forma chat --chat-template FILE`).
nlohmann::ordered_json load_special_tokens(const std::string& tokenizer_config_json_path);

}  // namespace forma::chat
