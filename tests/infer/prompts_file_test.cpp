// The --prompts-file reader: settings per line over the defaults, text prompts through the
// tokenizer, and every kind of malformed line as an error naming FILE:LINE and the field.
#include "forma/infer/prompts_file.h"

#include <gtest/gtest.h>

#include "data/byte_tokenizer.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "test_paths.h"

namespace forma::infer {
namespace {

std::string write_prompts_file(const std::string& text) {
  const std::string path = test::scratch_dir() + "/prompts.jsonl";
  write_file_atomic(path, text);
  return path;
}

// The message of the error read_prompts_file throws for `text` ("" when it does not throw).
std::string prompts_file_error(const std::string& text, const tok::Tokenizer* tokenizer = nullptr) {
  const std::string path = write_prompts_file(text);
  try {
    read_prompts_file(path, GenerationConfig{}, tokenizer, 320);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PromptsFile, LinesOverrideTheDefaultsAndTextGoesThroughTheTokenizer) {
  test::ByteTokenizer tokenizer;
  const std::string path = write_prompts_file(
      "{\"prompt_ids\": [5, 6, 7], \"id\": \"first\"}\n"
      "\n"
      "{\"prompt\": \"Hi\", \"max_new_tokens\": 3, \"temperature\": 0.7, \"top_k\": 5, \"top_p\": 0.9,"
      " \"min_p\": 0.05, \"repetition_penalty\": 1.3, \"seed\": 42, \"stop\": [\"a\", \"bc\"]}\n"
      "{\"prompt_ids\": [1], \"stop\": \"\\n\"}\n");
  GenerationConfig defaults;
  defaults.max_new_tokens = 20;
  defaults.sampling.temperature = 0.0;
  defaults.eos_ids = {2};
  auto prompts = read_prompts_file(path, defaults, &tokenizer, 320);
  ASSERT_EQ(prompts.size(), 3u);

  EXPECT_EQ(prompts[0].line, 1);
  EXPECT_EQ(prompts[0].id, "first");
  EXPECT_EQ(prompts[0].request.prompt_ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(prompts[0].request.config.max_new_tokens, 20);
  EXPECT_EQ(prompts[0].request.config.sampling.temperature, 0.0);
  EXPECT_EQ(prompts[0].request.label, path + ":1");

  const auto& second = prompts[1];
  EXPECT_EQ(second.line, 3);  // the blank line counts
  EXPECT_TRUE(second.id.is_null());
  EXPECT_EQ(second.request.prompt_ids, (std::vector<int32_t>{'H', 'i'}));
  const GenerationConfig& c = second.request.config;
  EXPECT_EQ(c.max_new_tokens, 3);
  EXPECT_EQ(c.sampling.temperature, 0.7);
  EXPECT_EQ(c.sampling.top_k, 5);
  EXPECT_EQ(c.sampling.top_p, 0.9);
  EXPECT_EQ(c.sampling.min_p, 0.05);
  EXPECT_EQ(c.sampling.repetition_penalty, 1.3);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.stop_strings, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(c.eos_ids, (std::vector<int32_t>{2}));  // not a per-line setting: the default stays
  EXPECT_EQ(prompts[2].request.config.stop_strings, (std::vector<std::string>{"\n"}));
}

TEST(PromptsFile, MalformedLinesNameFileLineAndField) {
  test::ByteTokenizer tokenizer;
  const std::string ok = "{\"prompt_ids\": [1, 2]}\n";
  struct Case {
    std::string second_line;
    std::string field;  // expected in the message after "FILE:2: "
  };
  const std::vector<Case> cases = {
      {"{\"prompt_ids\": [1, 2]", "not valid JSON"},
      {"[1, 2]", "JSON object"},
      {"{\"prompt_ids\": [1], \"temprature\": 0.5}", "field \"temprature\" is unknown"},
      {"{\"prompt_ids\": [1], \"temperature\": \"hot\"}", "field \"temperature\" must be a number"},
      {"{\"prompt_ids\": [1], \"temperature\": -1}", "temperature must be >= 0"},
      {"{\"prompt_ids\": [1], \"top_p\": 1.5}", "top_p must be in (0, 1]"},
      {"{\"prompt_ids\": [1], \"top_k\": 2.5}", "field \"top_k\" must be an integer"},
      {"{\"prompt_ids\": [1], \"max_new_tokens\": 0}", "field \"max_new_tokens\" must be in [1, "},
      {"{\"prompt_ids\": [1], \"seed\": -3}", "field \"seed\" must be in [0, "},
      {"{\"prompt_ids\": [1], \"stop\": [\"x\", 3]}", "field \"stop\" must be a non-empty string"},
      {"{\"prompt_ids\": [1], \"stop\": \"\"}", "field \"stop\" must be a non-empty string"},
      {"{\"prompt_ids\": []}", "field \"prompt_ids\" must be a non-empty list"},
      {"{\"prompt_ids\": [1, \"2\"]}", "field \"prompt_ids\" must hold integers"},
      {"{\"prompt_ids\": [1, 320]}", "field \"prompt_ids\" id 320 is outside the model's vocabulary [0, 320)"},
      {"{\"prompt_ids\": [-1]}", "field \"prompt_ids\" id -1 is outside"},
      {"{\"prompt\": 7}", "field \"prompt\" must be a string"},
      {"{\"prompt\": \"a\", \"prompt_ids\": [1]}", "exactly one of the fields \"prompt\" and \"prompt_ids\""},
      {"{\"max_new_tokens\": 4}", "exactly one of the fields \"prompt\" and \"prompt_ids\""},
  };
  for (const auto& c : cases) {
    const std::string message = prompts_file_error(ok + c.second_line + "\n" + ok, &tokenizer);
    const std::string path = test::scratch_dir() + "/prompts.jsonl";
    EXPECT_EQ(message.rfind(path + ":2: ", 0), 0u) << c.second_line << " -> " << message;
    EXPECT_NE(message.find(c.field), std::string::npos) << c.second_line << " -> " << message;
  }
}

TEST(PromptsFile, TextPromptsAndStopStringsNeedATokenizer) {
  EXPECT_NE(prompts_file_error("{\"prompt\": \"hello\"}\n").find(":1: field \"prompt\" needs a tokenizer"),
            std::string::npos);
  EXPECT_NE(prompts_file_error("{\"prompt_ids\": [1], \"stop\": \"x\"}\n").find(":1: field \"stop\" needs a tokenizer"),
            std::string::npos);
  EXPECT_NE(prompts_file_error("\n  \n").find("no prompts"), std::string::npos);
}

}  // namespace
}  // namespace forma::infer
