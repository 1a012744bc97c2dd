// `forma generate` as a user runs it: the llama fixture (HF's greedy tokens known) with
// --prompt-ids, and a copy of it with a hand-written byte-level tokenizer.json whose ids are the
// byte values, so prompt ids and output text are known without forma's tokenizer.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "forma/core/files.h"
#include "byte_level_tokenizer_json.h"
#include "test_paths.h"

namespace forma {
namespace {

namespace fs = std::filesystem;

// stdout only: the tests compare it exactly.
test::CommandResult run_forma_quiet(const std::string& args) { return test::run_forma(args, /*with_stderr=*/false); }

std::vector<int32_t> reference_new_tokens(const std::string& arch) {
  auto json = nlohmann::json::parse(read_file(test::fixture("hf-tiny/" + arch + "/reference.json")));
  return json.at("generation").at("new_tokens").get<std::vector<int32_t>>();
}

std::string reference_prompt_ids(const std::string& arch) {
  auto json = nlohmann::json::parse(read_file(test::fixture("hf-tiny/" + arch + "/reference.json")));
  auto sequence = json.at("generation").at("sequence").get<std::vector<int32_t>>();
  std::string out;
  for (size_t i = 0; i + 8 < sequence.size(); ++i) out += (i ? "," : "") + std::to_string(sequence[i]);
  return out;
}

TEST(GenerateCli, PromptIdsGreedyMatchesHf) {
  const std::string model = test::fixture("hf-tiny/llama");
  auto run = run_forma_quiet("generate --model " + model + " --prompt-ids " + reference_prompt_ids("llama") +
                             " --max-new-tokens 8 --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto json = nlohmann::json::parse(run.output);
  EXPECT_EQ(json.at("output_ids").get<std::vector<int32_t>>(), reference_new_tokens("llama"));
  EXPECT_EQ(json.at("stop_reason"), "max_new_tokens");
  // Without --json the ids stream as text; --no-cache gives the same tokens.
  auto streamed = run_forma_quiet("generate --model " + model + " --prompt-ids " + reference_prompt_ids("llama") +
                                  " --max-new-tokens 8 --no-cache");
  EXPECT_EQ(streamed.output, "169 308 131 132 120 220 161 24 \n");
}

TEST(GenerateCli, TokenizerPromptStreamingAndStopString) {
  const std::string dir = test::scratch_dir() + "/model";
  fs::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(test::fixture(std::string("hf-tiny/llama/") + name), dir + "/" + name);
  }
  std::vector<std::string> id_text;
  write_file_atomic(dir + "/tokenizer.json", test::byte_level_tokenizer_json(&id_text));

  auto run = run_forma_quiet("generate --model " + dir + " --prompt Hi! --max-new-tokens 12 --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto json = nlohmann::json::parse(run.output);
  EXPECT_EQ(json.at("prompt_ids").get<std::vector<int32_t>>(), (std::vector<int32_t>{'H', 'i', '!'}));
  auto ids = json.at("output_ids").get<std::vector<int32_t>>();
  ASSERT_EQ(ids.size(), 12u);  // config.json's EOS (2) would have stopped earlier
  std::string expected;
  for (int32_t id : ids) expected += id_text.at(id);

  // Streamed to stdout, the text is the same bytes (plus the final newline).
  auto streamed = run_forma_quiet("generate --model " + dir + " --prompt Hi! --max-new-tokens 12");
  EXPECT_EQ(streamed.output, expected + "\n");
  // In JSON, bytes that are not valid UTF-8 are replaced by U+FFFD.
  nlohmann::json same = expected;
  EXPECT_EQ(json.at("text").dump(), same.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));

  // A stop string made of the 5th and 6th tokens' text cuts the output before it.
  const std::string stop = id_text.at(ids[4]) + id_text.at(ids[5]);
  const size_t cut = expected.find(stop);
  auto stopped = run_forma_quiet("generate --model " + dir + " --prompt Hi! --max-new-tokens 12 --stop '" + stop + "'");
  if (stop.find('\'') == std::string::npos && stop.find('\0') == std::string::npos) {
    EXPECT_EQ(stopped.output, expected.substr(0, cut) + "\n");
  }
}

TEST(GenerateCli, BadArgumentsAreErrors) {
  const std::string model = test::fixture("hf-tiny/llama");
  EXPECT_NE(run_forma_quiet("generate --model " + model + " --prompt-ids 1,x,3").exit_code, 0);
  EXPECT_NE(run_forma_quiet("generate --model " + model + " --prompt hello").exit_code, 0);  // no tokenizer
  EXPECT_NE(run_forma_quiet("generate --model " + model + " --prompt-ids 1,2 --top-p 2").exit_code, 0);
  EXPECT_NE(run_forma_quiet("generate --model /nonexistent --prompt-ids 1").exit_code, 0);
}

}  // namespace
}  // namespace forma
