// SFT rendering: which tokens of a conversation are trained on, compared with Hugging Face
// transformers' own assistant mask (apply_chat_template(return_assistant_tokens_mask=True) on the
// same template with {% generation %} tags around the assistant turns, see sft_mask_reference.py),
// and the plain prompt/completion and text layouts, checked by hand with a byte tokenizer.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "data/byte_tokenizer.h"
#include "forma/data/sft_render.h"
#include "test_paths.h"

namespace forma::data {
namespace {

using nlohmann::ordered_json;

// ChatML (Qwen2's template) and Llama 3.1's layout, with the assistant turns tagged for transformers.
const char* kChatml =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou "
    "are a helpful assistant.<|im_end|>\\n' }}{% endif %}{% if message['role'] == 'assistant' %}{{ "
    "'<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>\\n' }}{% endgeneration %}{% else "
    "%}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}{% "
    "if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const char* kLlama3 =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' }}{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim + "
    "'<|eot_id|>' }}{% endgeneration %}{% else %}{{ message['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor "
    "%}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

std::string without_generation_tags(std::string source) {
  for (const std::string tag : {"{% generation %}", "{% endgeneration %}"}) {
    for (size_t at; (at = source.find(tag)) != std::string::npos;) source.erase(at, tag.size());
  }
  return source;
}

struct Case {
  const char* tagged;
  ordered_json special;
  ordered_json messages;
};

ordered_json conversation(std::initializer_list<std::pair<const char*, const char*>> turns) {
  ordered_json out = ordered_json::array();
  for (auto [role, content] : turns) out.push_back({{"role", role}, {"content", content}});
  return out;
}

ordered_json run_reference(const std::string& tokenizer_json, const std::vector<Case>& cases) {
  ordered_json request = {{"tokenizer", tokenizer_json}, {"cases", ordered_json::array()}};
  for (const auto& c : cases) {
    request["cases"].push_back({{"template", c.tagged}, {"special", c.special}, {"messages", c.messages}});
  }
  const std::string dir = test::scratch_dir();
  std::ofstream(dir + "/in.json") << request.dump();
  auto result = test::run_command("'" + test::python() + "' '" + test::fixture("../data/sft_mask_reference.py") + "' '" +
                                  dir + "/in.json' '" + dir + "/out.json'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::stringstream text;
  text << std::ifstream(dir + "/out.json").rdbuf();
  return result.exit_code == 0 ? ordered_json::parse(text.str()) : ordered_json::array();
}

TEST(SftRender, AssistantMaskMatchesTransformers) {
  const std::string folder = test::asset("tokenizer-llama3/models");
  auto tokenizer = tok::load_tokenizer(folder);
  const ordered_json llama_special = {{"bos_token", "<|begin_of_text|>"}};
  std::vector<Case> cases = {
      {kChatml, ordered_json::object(),
       conversation({{"user", "Hi there"}, {"assistant", "Hello! Café ☕"}, {"user", "2+2?"}, {"assistant", " 4 "}})},
      {kChatml, ordered_json::object(),
       conversation({{"system", "Be terse."}, {"user", "Name a colour."}, {"assistant", "Blue.\n\nOr green."}})},
      {kLlama3, llama_special,
       conversation({{"system", "You answer in French. "}, {"user", "  Hello"}, {"assistant", "  Bonjour !  "},
                     {"user", "Thanks"}, {"assistant", "De rien.\n"}, {"user", "Bye"}, {"assistant", "Au revoir 👋"}})},
      {kLlama3, llama_special, conversation({{"user", "Count: 1 2 3"}, {"assistant", "4 5 6"}})},
  };
  ordered_json expected = run_reference(folder + "/tokenizer.json", cases);
  ASSERT_EQ(expected.size(), cases.size());
  int64_t trained = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + cases[i].messages.dump());
    chat::ChatTemplate chat_template(without_generation_tags(cases[i].tagged), cases[i].special);
    SftRenderer renderer(*tokenizer, chat_template, {});
    SftRecord record;
    record.format = SftFormat::messages;
    record.messages = cases[i].messages;
    EXPECT_EQ(render_with_assistant_spans(chat_template, record.messages).text, expected[i]["text"].get<std::string>());
    SftTokens got = renderer.render(record);
    EXPECT_EQ(got.ids, expected[i]["ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(std::vector<int>(got.mask.begin(), got.mask.end()), expected[i]["mask"].get<std::vector<int>>());
    for (uint8_t m : got.mask) trained += m;
  }
  EXPECT_GT(trained, 20);  // the comparison covered real spans
}

TEST(SftRender, TrainOnAllMarksEveryToken) {
  test::ByteTokenizer tokenizer;
  chat::ChatTemplate chat_template(without_generation_tags(kChatml), ordered_json::object());
  SftRenderOptions options;
  options.train_on_all = true;
  SftRecord record;
  record.format = SftFormat::messages;
  record.messages = conversation({{"user", "a"}, {"assistant", "b"}});
  SftTokens got = SftRenderer(tokenizer, chat_template, options).render(record);
  const std::string text = chat_template.render_json(record.messages, false);
  EXPECT_EQ(got.ids, tokenizer.encode(text));
  EXPECT_EQ(got.mask, std::vector<uint8_t>(text.size(), 1));
}

TEST(SftRender, PromptCompletionTrainsTheCompletionAndEos) {
  test::ByteTokenizer tokenizer;  // one id per byte, EOS 256
  SftRecord record;
  record.format = SftFormat::prompt_completion;
  record.prompt = "Q: 1+1\nA:";
  record.completion = " 2";
  SftTokens got = SftRenderer(tokenizer, std::nullopt, {}).render(record);
  std::vector<int32_t> ids = tokenizer.encode("Q: 1+1\nA: 2");
  ids.push_back(256);
  EXPECT_EQ(got.ids, ids);
  std::vector<uint8_t> mask(9, 0);  // the 9 bytes of the prompt
  mask.insert(mask.end(), {1, 1, 1});  // " 2" and EOS
  EXPECT_EQ(got.mask, mask);

  record.format = SftFormat::text;
  record.completion = "abc";
  got = SftRenderer(tokenizer, std::nullopt, {}).render(record);
  EXPECT_EQ(got.ids, (std::vector<int32_t>{'a', 'b', 'c', 256}));
  EXPECT_EQ(got.mask, std::vector<uint8_t>(4, 1));
}

TEST(SftRender, ConversationWithoutTemplateIsARecordError) {
  test::ByteTokenizer tokenizer;
  SftRecord record;
  record.format = SftFormat::messages;
  record.messages = conversation({{"user", "a"}, {"assistant", "b"}});
  EXPECT_THROW(SftRenderer(tokenizer, std::nullopt, {}).render(record), RecordError);
}

TEST(SftRender, TemplateThatRewritesEarlierTurnsIsRefused) {
  // The last user turn is rendered differently from earlier ones: the prompt before an assistant
  // turn is then not the start of the whole conversation.
  chat::ChatTemplate chat_template(
      "{% for m in messages %}{% if loop.last %}[LAST]{% endif %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
      ordered_json::object());
  auto messages = conversation({{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}});
  std::string message = test::error_of([&] { render_with_assistant_spans(chat_template, messages); });
  EXPECT_NE(message.find("messages[1]"), std::string::npos) << message;
}

}  // namespace
}  // namespace forma::data
