// Real published chat templates (tests/fixtures/chat_templates, see its README) rendered by forma
// must equal what Jinja2 renders, configured as transformers configures it, for many
// conversations: with and without a system prompt, several turns, both values of
// add_generation_prompt, awkward characters, tool calls, and conversations the template rejects.
#include <gtest/gtest.h>

#include "chat/jinja2_reference.h"
#include "forma/chat/chat_template.h"
#include "forma/core/files.h"
#include "test_paths.h"

namespace forma::test {
namespace {

using json = nlohmann::ordered_json;

json msg(const std::string& role, const std::string& content) { return {{"role", role}, {"content", content}}; }

const std::string kAwkward =
    "Quotes ' and \" and \\\\ backslashes \\n (escaped), a real\nnewline, tab\tend, unicode h\xC3\xA9llo "
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E, emoji \xF0\x9F\xA4\x96\xF0\x9F\x91\x8D, {{ not_a_variable }} "
    "{% if x %} and {# no comment #}";

// Conversations every template should be able to render (or reject the same way Jinja2 does).
std::vector<std::pair<std::string, json>> conversations() {
  return {
      {"single user turn", json::array({msg("user", "Hello")})},
      {"system + 2 turns",
       json::array({msg("system", "You are a helpful assistant."), msg("user", "Hi"),
                    msg("assistant", "Hello! How can I help?"), msg("user", "Tell me a joke.")})},
      {"no system, 3 turns ending with assistant",
       json::array({msg("user", "What is 2+2?"), msg("assistant", "4"), msg("user", "And 3+3?"),
                    msg("assistant", "6")})},
      {"awkward characters",
       json::array({msg("system", "  Be terse.\n\n"), msg("user", kAwkward), msg("assistant", "  " + kAwkward + "  "),
                    msg("user", "\n\nSecond question?\n")})},
      {"empty contents", json::array({msg("user", ""), msg("assistant", ""), msg("user", " ")})},
      {"roles out of order", json::array({msg("user", "one"), msg("user", "two")})},
      {"assistant first", json::array({msg("assistant", "I start"), msg("user", "ok")})},
      {"unknown role", json::array({msg("user", "hi"), msg("narrator", "meanwhile")})},
      {"thinking trace",
       json::array({msg("user", "Why?"), msg("assistant", "<think>\nLet me think.\n</think>\n\nBecause."),
                    msg("user", "Sure?")})},
  };
}

// Tool definitions and tool calls exercise tojson (with indent), dict iteration, selectattr and
// namespace() in the templates that support them.
json weather_tool() {
  return {{"type", "function"},
          {"function",
           {{"name", "get_weather"},
            {"description", "Current weather in a city, \"quoted\" and \xC3\xBCnicode"},
            {"parameters",
             {{"type", "object"},
              {"properties", {{"city", {{"type", "string"}, {"description", "City name"}}},
                              {"days", {{"type", "integer"}, {"minimum", 1}, {"maximum", 7.5}}}}},
              {"required", json::array({"city"})}}}}}};
}

// A tool whose parameter types reach every branch of Hermes' json_to_python_type macro.
json search_tool() {
  return {{"type", "function"},
          {"function",
           {{"name", "search"},
            {"description", "Search documents."},
            {"parameters",
             {{"type", "object"},
              {"properties",
               {{"query", {{"type", "string"}, {"description", "  What to look for  "}}},
                {"tags", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Tags"}}},
                {"mode", {{"type", json::array({"string", "integer"})}, {"description", "Mode"}}},
                {"weights", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}, {"description", "W"}}},
                {"exact", {{"type", "boolean"}, {"description", "Exact?"}}}}},
              {"required", json::array({"query"})}}},
            {"return", {{"type", "string"}, {"description", "The hits"}}}}}};
}

json load_config(const std::string& name) {
  return json::parse(read_file(fixture("chat_templates/" + name)));
}

// Special tokens as transformers passes them (only those the config sets).
json special_tokens(const std::string& name) {
  return chat::load_chat_template(fixture("chat_templates/" + name)).special_tokens();
}

void check_template(const std::string& name, const json& extra = json::object()) {
  std::string source = load_config(name)["chat_template"].get<std::string>();
  json tokens = special_tokens(name);
  std::vector<ReferenceCase> cases;
  for (const auto& [label, messages] : conversations()) {
    for (bool add_generation_prompt : {false, true}) {
      json context = chat::chat_context(messages, add_generation_prompt, tokens);
      for (const auto& [key, value] : extra.items()) context[key] = value;
      cases.push_back({name + " / " + label + (add_generation_prompt ? " / +gen" : ""), source, context});
    }
  }
  int rendered = expect_same_as_jinja2(cases);
  EXPECT_GE(rendered, 4) << "too few conversations rendered without error for " << name;
}

TEST(ChatTemplateReference, Llama3FromTokenizerAsset) {
  // The template as shipped in the real Llama 3 tokenizer_config.json (npm asset).
  std::string source = load_config("llama3-8b-instruct.json")["chat_template"];
  json shipped = json::parse(read_file(asset("tokenizer-llama3/models/tokenizer_config.json")));
  EXPECT_EQ(source, shipped["chat_template"].get<std::string>());
  check_template("llama3-8b-instruct.json");
}

TEST(ChatTemplateReference, Llama33WithDateAndToolLogic) { check_template("llama3.3-70b-instruct.json"); }
TEST(ChatTemplateReference, Llama33WithDateString) {
  check_template("llama3.3-70b-instruct.json", {{"date_string", "24 Nov 2026"}});
}
TEST(ChatTemplateReference, MistralInstructV02) { check_template("mistral-7b-instruct-v0.2.json"); }
TEST(ChatTemplateReference, MistralNemo) { check_template("mistral-nemo-instruct-2407.json"); }
TEST(ChatTemplateReference, Qwen2ChatML) { check_template("qwen2-7b-instruct.json"); }
TEST(ChatTemplateReference, Qwen3) { check_template("qwen3-0.6b.json"); }
TEST(ChatTemplateReference, Qwen3ThinkingDisabled) {
  check_template("qwen3-0.6b.json", {{"enable_thinking", false}});
}
TEST(ChatTemplateReference, Gemma2) { check_template("gemma-2-2b-it.json"); }
TEST(ChatTemplateReference, Phi35) { check_template("phi-3.5-mini-instruct.json"); }
// Without date_string the template calls strftime_now("%d %b %Y"): today's date in both renderers.
TEST(ChatTemplateReference, Llama32WithStrftimeNow) { check_template("llama3.2-3b-instruct.json"); }
TEST(ChatTemplateReference, Hermes3MacrosWithTools) {
  check_template("hermes-3-llama-3.1-8b-tool-use.json", {{"tools", json::array({weather_tool(), search_tool()})}});
}

json tool_conversation() {
  json call = {{"id", "call12345"},
               {"type", "function"},
               {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}, {"days", 2}}}}}};
  return json::array({msg("system", "Use tools when needed."), msg("user", "Weather in Paris?"),
                      {{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}},
                      {{"role", "tool"}, {"tool_call_id", "call12345"}, {"content", "{\"temp\": 21.5, \"sky\": \"clear\"}"}},
                      msg("assistant", "It is 21.5 degrees and clear."), msg("user", "Thanks!")});
}

void check_tools(const std::string& name, const json& extra = json::object()) {
  std::string source = load_config(name)["chat_template"].get<std::string>();
  std::vector<ReferenceCase> cases;
  for (bool with_tools : {false, true}) {
    for (bool add_generation_prompt : {false, true}) {
      json context = chat::chat_context(tool_conversation(), add_generation_prompt, special_tokens(name));
      if (with_tools) context["tools"] = json::array({weather_tool()});
      for (const auto& [key, value] : extra.items()) context[key] = value;
      cases.push_back({name + (with_tools ? " / tools" : " / no tools") + (add_generation_prompt ? " / +gen" : ""),
                       source, context});
    }
  }
  EXPECT_GE(expect_same_as_jinja2(cases), 2);
}

TEST(ChatTemplateReference, Llama33ToolCalls) {
  check_tools("llama3.3-70b-instruct.json");
  check_tools("llama3.3-70b-instruct.json", {{"tools_in_user_message", false}});
  check_tools("llama3.3-70b-instruct.json", {{"builtin_tools", json::array({"brave_search", "code_interpreter"})}});
}
TEST(ChatTemplateReference, Qwen3ToolCalls) { check_tools("qwen3-0.6b.json"); }
TEST(ChatTemplateReference, MistralNemoToolCalls) { check_tools("mistral-nemo-instruct-2407.json"); }
TEST(ChatTemplateReference, Llama32ToolCalls) {
  check_tools("llama3.2-3b-instruct.json", {{"date_string", "01 Jan 2025"}});
}
TEST(ChatTemplateReference, Hermes3ToolCalls) { check_tools("hermes-3-llama-3.1-8b-tool-use.json"); }

}  // namespace
}  // namespace forma::test
