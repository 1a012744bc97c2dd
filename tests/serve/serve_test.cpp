// `forma serve` from the outside, through independent clients: the official openai Python client
// (openai_client.py: greedy completions equal `forma generate`, chat equals `forma chat`, echo
// logprobs equal transformers' log-softmax, errors, auth, 429, disconnects, SIGTERM; with
// --adapter, adapter_client.py: a PEFT adapter answers as PEFT's model and `forma generate --adapter`),
// lm-evaluation-harness's local-completions model (lm_eval_server.py: the same accuracy as `forma
// eval`), and the web page in headless Chromium (web_page_chromium.py). Each script starts its own
// server on a free port with the chat test model (tests/infer/chat_model_folder.h).
#include <gtest/gtest.h>

#include <filesystem>

#include "infer/chat_model_folder.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

std::string script(const std::string& name) { return std::string(FORMA_FIXTURES_DIR) + "/../serve/" + name; }

// Runs tests/serve/NAME FORMA MODEL SCRATCH with the project's Python; its output on failure.
void run_script(const std::string& name, const std::string& part = "") {
  const std::string dir = forma::test::scratch_dir();
  const auto folder = forma::test::make_chat_model_folder(dir + "/tiny", "qwen2-7b-instruct.json");
  const std::string command = "cd '" + fs::path(script(name)).parent_path().string() + "' && '" +
                              forma::test::python() + "' '" + script(name) + "' '" + forma::test::forma_binary() +
                              "' '" + folder.dir + "' '" + dir + "' " + part + " 2>&1";
  const auto result = forma::test::run_command(command);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::printf("%s", result.output.substr(result.output.size() > 2000 ? result.output.size() - 2000 : 0).c_str());
}

TEST(ServeOpenAIClient, CompletionsChatStreamingErrors) { run_script("openai_client.py", "api"); }

TEST(ServeOpenAIClient, ApiKeyAndFullQueue) { run_script("openai_client.py", "limits"); }

TEST(ServeAdapter, PeftAdapterAnswersAsPeftAndFormaGenerate) { run_script("adapter_client.py"); }

TEST(ServeLmEval, AccuracyEqualsFormaEval) { run_script("lm_eval_server.py"); }

TEST(ServeWebPage, ChromiumStreamsAReply) {
  if (!fs::exists("/usr/bin/chromium") || !fs::exists("/usr/bin/chromedriver")) {
    GTEST_SKIP() << "no /usr/bin/chromium or /usr/bin/chromedriver (scripts/setup.sh installs them)";
  }
  run_script("web_page_chromium.py");
}

}  // namespace
