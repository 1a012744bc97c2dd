// load_chat_template: the forms tokenizer_config.json takes in the wild, and errors that name the
// file and field.
#include <gtest/gtest.h>

#include <fstream>

#include "forma/chat/chat_template.h"
#include "forma/chat/jinja_eval.h"
#include "test_paths.h"

namespace forma::test {
namespace {

using json = nlohmann::ordered_json;

std::string write_config(const std::string& name, const std::string& text) {
  std::string path = scratch_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string load_error(const std::string& path) {
  try {
    chat::load_chat_template(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ChatTemplateLoad, RealLlama3ConfigRendersItsHeaderFormat) {
  auto tmpl = chat::load_chat_template(asset("tokenizer-llama3/models/tokenizer_config.json"));
  EXPECT_EQ(tmpl.special_tokens()["bos_token"], "<|begin_of_text|>");
  EXPECT_EQ(tmpl.special_tokens()["eos_token"], "<|end_of_text|>");
  // Expected text written out by hand from the Llama 3 prompt format.
  std::string got = tmpl.render({{"system", "Be brief."}, {"user", "  Hi there \n"}}, true);
  EXPECT_EQ(got,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateLoad, MistralConfigWithoutTemplateIsAClearError) {
  // The npm "llama2" tokenizer is Mistral-7B's, whose config carries no chat_template.
  std::string message = load_error(asset("tokenizer-llama2/models/tokenizer_config.json"));
  EXPECT_NE(message.find("tokenizer_config.json: no field 'chat_template'"), std::string::npos) << message;
}

TEST(ChatTemplateLoad, SpecialTokensAsContentObjectsAndRaiseException) {
  auto tmpl = chat::load_chat_template(fixture("chat_templates/mistral-7b-instruct-v0.2.json"));
  EXPECT_EQ(tmpl.special_tokens()["bos_token"], "<s>");
  EXPECT_EQ(tmpl.render({{"user", "a"}, {"assistant", "b"}, {"user", "c"}}, true),
            "<s>[INST] a [/INST]b</s>[INST] c [/INST]");
  try {
    tmpl.render({{"user", "a"}, {"user", "b"}}, true);
    FAIL() << "alternation check did not fire";
  } catch (const chat::TemplateRaisedError& e) {
    EXPECT_EQ(std::string(e.what()), "Conversation roles must alternate user/assistant/user/assistant/...");
  }
}

TEST(ChatTemplateLoad, NullTokensAreLeftUndefinedAndExtraContextOverrides) {
  auto tmpl = chat::load_chat_template(fixture("chat_templates/qwen2-7b-instruct.json"));
  EXPECT_FALSE(tmpl.special_tokens().contains("bos_token"));
  EXPECT_EQ(tmpl.render({{"user", "x"}}, false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n");
  std::string path = write_config("tokenizer_config.json",
                                  R"({"chat_template": "{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ flag }}", "bos_token": "<b>", "eos_token": null})");
  EXPECT_EQ(chat::load_chat_template(path).render({}, false, {{"flag", 7}}), "<b>||None|7");
  EXPECT_EQ(chat::load_chat_template(path).render({}, false, {{"bos_token", "B"}}), "B||None|");
}

TEST(ChatTemplateLoad, NamedTemplateListPicksDefault) {
  std::string path = write_config("tokenizer_config.json", R"({"chat_template": [
      {"name": "tool_use", "template": "tools"}, {"name": "default", "template": "default {{ messages | length }}"}]})");
  EXPECT_EQ(chat::load_chat_template(path).render({{"user", "a"}}, false), "default 1");
  EXPECT_EQ(chat::load_chat_template(path, "tool_use").source(), "tools");
  try {
    chat::load_chat_template(path, "rag");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template named 'rag' (the file has: tool_use, default)"), std::string::npos);
  }
}

TEST(ChatTemplateLoad, SeparateChatTemplateJinjaFile) {
  std::string path = write_config("tokenizer_config.json", R"({"eos_token": "</s>"})");
  write_config("chat_template.jinja", "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}\n");
  EXPECT_EQ(chat::load_chat_template(path).render({{"user", "q"}}, false), "q</s>");
}

TEST(ChatTemplateLoad, ErrorsNameFileAndField) {
  EXPECT_NE(load_error(write_config("a.json", "{ not json")).find("a.json: invalid JSON"), std::string::npos);
  EXPECT_NE(load_error(write_config("b.json", R"({"chat_template": 5})")).find("b.json: field 'chat_template' must be"),
            std::string::npos);
  EXPECT_NE(load_error(write_config("c.json", R"({"chat_template": "x", "eos_token": 3})")).find("c.json: field 'eos_token'"),
            std::string::npos);
  std::string syntax = load_error(write_config("d.json", R"({"chat_template": "ok\n{% for %}"})"));
  EXPECT_NE(syntax.find("d.json: chat template line 2, column 8"), std::string::npos) << syntax;
  EXPECT_NE(load_error(scratch_dir() + "/missing.json").find("missing.json"), std::string::npos);
}

}  // namespace
}  // namespace forma::test
