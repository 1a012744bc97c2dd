// `forma chat` as a user scripts it: a session piped through stdin (two turns, /system, /reset,
// /exit) with --json, checked against the Jinja2 rendering of the conversation encoded by hand and
// against infer::generate's greedy replies on those ids; errors for a folder without a template.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat/jinja2_reference.h"
#include "forma/chat/chat_template.h"
#include "forma/core/files.h"
#include "forma/infer/generate.h"
#include "forma/model/hf_io.h"
#include "infer/chat_model_folder.h"
#include "test_paths.h"

namespace forma {
namespace {

namespace fs = std::filesystem;

TEST(ChatCli, ScriptedSessionMatchesJinja2AndGreedyGeneration) {
  const std::string dir = test::scratch_dir();
  const test::ChatModelFolder folder = test::make_chat_model_folder(dir + "/model", "qwen2-7b-instruct.json");
  write_file_atomic(dir + "/session.txt",
                    "Hello there\n/system Be brief.\nWhat is 2+2?\n\n/reset\n//slash at the start\n/exit\nNever sent\n");
  auto run = test::run_command(test::forma_binary() + " chat --model " + folder.dir +
                                   " --json --max-new-tokens 6 < " + dir + "/session.txt",
                               /*with_stderr=*/false);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto replies = test::json_lines(run.output);
  ASSERT_EQ(replies.size(), 3u) << run.output;

  // The conversation as the session should have seen it, the replies taken from its output.
  const std::string source = chat::load_chat_template(folder.dir + "/tokenizer_config.json").source();
  const nlohmann::ordered_json special = {{"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"}};
  std::vector<std::vector<chat::ChatMessage>> conversations(3);
  conversations[0] = {{"user", "Hello there"}};
  const std::string first_reply = replies[0].at("text");
  conversations[1] = {{"system", "Be brief."}, {"user", "Hello there"}, {"assistant", first_reply},
                      {"user", "What is 2+2?"}};
  conversations[2] = {{"system", "Be brief."}, {"user", "/slash at the start"}};
  std::vector<test::ReferenceCase> cases;
  for (const auto& messages : conversations) {
    cases.push_back({"turn", source, chat::chat_context(chat::to_json(messages), true, special)});
  }
  const auto rendered = test::render_with_jinja2(cases);
  ASSERT_EQ(rendered.size(), 3u);

  CausalLM model = load_pretrained(folder.dir);
  infer::GenerationConfig greedy;
  greedy.sampling.temperature = 0;
  greedy.max_new_tokens = 6;
  greedy.eos_ids = {2};  // config.json's eos_token_id and the tokenizer's <|im_end|>
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("turn " + std::to_string(i + 1));
    ASSERT_TRUE(rendered[i].ok) << rendered[i].text;
    const std::vector<int32_t> expected_prompt = folder.encode(rendered[i].text);
    EXPECT_EQ(replies[i].at("prompt_ids").get<std::vector<int32_t>>(), expected_prompt);
    const auto reference = infer::generate(model, expected_prompt, greedy);
    EXPECT_EQ(replies[i].at("output_ids").get<std::vector<int32_t>>(), reference.ids);
    std::vector<int32_t> text_ids = reference.ids;
    if (reference.stop_reason == infer::StopReason::kEos) text_ids.pop_back();
    EXPECT_EQ(replies[i].at("text"), folder.decode(text_ids));
  }

  // Without --json the replies stream as text, one line each.
  auto streamed = test::run_command(test::forma_binary() + " chat --model " + folder.dir +
                                        " --max-new-tokens 6 < " + dir + "/session.txt",
                                    /*with_stderr=*/false);
  ASSERT_EQ(streamed.exit_code, 0);
  std::string expected_text;
  for (const auto& reply : replies) expected_text += reply.at("text").get<std::string>() + "\n";
  EXPECT_EQ(streamed.output, expected_text);
}

TEST(ChatCli, FoldersWithoutATemplateOrTokenizerAreErrors) {
  const std::string dir = test::scratch_dir();
  const test::ChatModelFolder folder = test::make_chat_model_folder(dir + "/model", "qwen2-7b-instruct.json");
  // A tokenizer_config.json without chat_template (Mistral's in the npm assets has none).
  write_file_atomic(folder.dir + "/tokenizer_config.json", R"({"eos_token": "<|im_end|>"})");
  auto run = test::run_forma("chat --model " + folder.dir + " < /dev/null");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("chat_template"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--chat-template"), std::string::npos) << run.output;

  // --chat-template FILE supplies one; the folder's special tokens still apply.
  write_file_atomic(dir + "/template.jinja",
                    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
  write_file_atomic(dir + "/one.txt", "Hi\n");
  auto with_file = test::run_command(test::forma_binary() + " chat --model " + folder.dir + " --chat-template " + dir +
                                         "/template.jinja --json --max-new-tokens 2 < " + dir + "/one.txt",
                                     /*with_stderr=*/false);
  ASSERT_EQ(with_file.exit_code, 0) << with_file.output;
  auto reply = nlohmann::json::parse(with_file.output);
  EXPECT_EQ(reply.at("prompt_ids").get<std::vector<int32_t>>(),
            folder.encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));

  fs::remove(folder.dir + "/tokenizer.json");
  auto no_tokenizer = test::run_forma("chat --model " + folder.dir + " < /dev/null");
  EXPECT_EQ(no_tokenizer.exit_code, 1);
  EXPECT_NE(no_tokenizer.output.find("no tokenizer"), std::string::npos) << no_tokenizer.output;
}

}  // namespace
}  // namespace forma
