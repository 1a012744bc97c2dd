// infer::ChatSession on a tiny chat model folder (tests/infer/chat_model_folder.h): the prompt ids
// are the Jinja2 rendering of the conversation (Debian's Jinja2, as transformers configures it)
// encoded by hand with the folder's known vocabulary; greedy replies are infer::generate's on those
// ids; the end-of-turn tokens, /system and /reset semantics, and errors that leave the history alone.
#include "forma/infer/chat_session.h"

#include <gtest/gtest.h>

#include "chat/jinja2_reference.h"
#include "forma/chat/jinja_eval.h"
#include "forma/core/error.h"
#include "forma/infer/generation_defaults.h"
#include "forma/model/hf_io.h"
#include "infer/chat_model_folder.h"
#include "test_paths.h"

namespace forma {
namespace {

// The reference rendering: Jinja2 with transformers' variables and the template's special tokens.
std::string jinja2_chat_prompt(const chat::ChatTemplate& tmpl, const std::vector<chat::ChatMessage>& messages) {
  auto context = chat::chat_context(chat::to_json(messages), /*add_generation_prompt=*/true, tmpl.special_tokens());
  auto results = test::render_with_jinja2({{"chat", tmpl.source(), context}});
  EXPECT_EQ(results.size(), 1u);
  EXPECT_TRUE(!results.empty() && results[0].ok) << (results.empty() ? "" : results[0].text);
  return results.empty() ? "" : results[0].text;
}

struct ChatSetup {
  test::ChatModelFolder folder;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  CausalLM model{nullptr};
  infer::GenerationConfig config;
};

ChatSetup open_chat_folder(const std::string& template_file) {
  ChatSetup s;
  s.folder = test::make_chat_model_folder(test::scratch_dir() + "/model", template_file, R"({"eos_token_id": [0]})");
  s.tokenizer = tok::load_tokenizer(s.folder.dir);
  s.model = load_pretrained(s.folder.dir);
  s.config = infer::load_generation_defaults(s.folder.dir, s.model->config(), s.tokenizer.get());
  s.config.max_new_tokens = 6;
  return s;
}

TEST(ChatSession, EndOfTurnTokensAddTheTokenizersEos) {
  ChatSetup s = open_chat_folder("qwen2-7b-instruct.json");
  infer::ChatSession session(s.model, *s.tokenizer, chat::load_chat_template(s.folder.dir + "/tokenizer_config.json"),
                             s.config);
  // generation_config.json's list, then tokenizer_config.json's eos_token "<|im_end|>" (id 2).
  EXPECT_EQ(session.config().eos_ids, (std::vector<int32_t>{0, 2}));
}

TEST(ChatSession, PromptsAreTheJinja2RenderingAndRepliesAreGreedyGeneration) {
  ChatSetup s = open_chat_folder("qwen2-7b-instruct.json");
  const auto tmpl = chat::load_chat_template(s.folder.dir + "/tokenizer_config.json");
  infer::ChatSession session(s.model, *s.tokenizer, tmpl, s.config);
  infer::GenerationConfig greedy = s.config;
  greedy.eos_ids = {0, 2};

  std::vector<chat::ChatMessage> expected_history;
  auto turn = [&](const std::string& user) {
    SCOPED_TRACE(user);
    auto messages = expected_history;
    messages.push_back({"user", user});
    const std::vector<int32_t> expected_prompt = s.folder.encode(jinja2_chat_prompt(tmpl, messages));
    EXPECT_EQ(session.prompt_ids(user), expected_prompt);
    std::string streamed;
    infer::ChatReply reply = session.send(user, {[&](std::string_view piece) { streamed += piece; }, {}});
    EXPECT_EQ(reply.prompt_ids, expected_prompt);
    const auto reference = infer::generate(s.model, expected_prompt, greedy, s.tokenizer.get());
    EXPECT_EQ(reply.result.ids, reference.ids);
    std::vector<int32_t> text_ids = reference.ids;
    if (reference.stop_reason == infer::StopReason::kEos) text_ids.pop_back();
    EXPECT_EQ(reply.result.text, s.folder.decode(text_ids));
    EXPECT_EQ(streamed, reply.result.text);
    expected_history.push_back({"user", user});
    expected_history.push_back({"assistant", s.folder.decode(text_ids)});
  };
  turn("Hello there");  // Qwen2's template adds its default system prompt
  session.set_system_prompt("Be brief.");
  expected_history.insert(expected_history.begin(), {"system", "Be brief."});
  turn("What is 2+2?");
  ASSERT_EQ(session.messages().size(), 5u);
  EXPECT_EQ(session.messages()[0].content, "Be brief.");
  session.reset();  // the system prompt stays
  expected_history = {{"system", "Be brief."}};
  turn("Again!");
  session.set_system_prompt("");
  EXPECT_EQ(session.messages().size(), 2u);
}

TEST(ChatSession, ATemplateErrorLeavesTheHistoryAsItWas) {
  // Gemma 2's template raises for a system message.
  ChatSetup s = open_chat_folder("gemma-2-2b-it.json");
  infer::ChatSession session(s.model, *s.tokenizer, chat::load_chat_template(s.folder.dir + "/tokenizer_config.json"),
                             s.config);
  session.send("Hi");
  ASSERT_EQ(session.messages().size(), 2u);
  session.set_system_prompt("Be brief.");
  EXPECT_THROW(session.send("Hello?"), chat::TemplateRaisedError);
  EXPECT_EQ(session.messages().size(), 3u);  // system + the first turn, nothing of the failed one
  session.set_system_prompt("");
  session.send("Hello?");
  EXPECT_EQ(session.messages().size(), 4u);
}

TEST(ChatSession, AConversationLongerThanTheContextIsAnError) {
  ChatSetup s = open_chat_folder("qwen2-7b-instruct.json");
  infer::ChatSession session(s.model, *s.tokenizer, chat::load_chat_template(s.folder.dir + "/tokenizer_config.json"),
                             s.config);
  EXPECT_THROW(session.send(std::string(1100, 'x')), Error);
  EXPECT_TRUE(session.messages().empty());
}

}  // namespace
}  // namespace forma
