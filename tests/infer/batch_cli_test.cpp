// The commands of batched inference as a user runs them: `forma generate --prompts-file` (each
// output line equal to the single `forma generate` of that line's prompt and settings, HF's greedy
// tokens for the reference prompt, a malformed line naming FILE:LINE and the field), `forma logits`
// against HF's logits in reference.json / reference.safetensors, and `forma bench generate` on tiny
// sizes (it runs and prints its columns; speed is never asserted).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "byte_level_tokenizer_json.h"
#include "forma/core/files.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace forma {
namespace {

namespace fs = std::filesystem;

struct HfGeneration {
  std::vector<int32_t> prompt, new_tokens;
};

HfGeneration hf_generation(const std::string& arch) {
  auto json = nlohmann::json::parse(read_file(test::fixture("hf-tiny/" + arch + "/reference.json")));
  HfGeneration out;
  out.new_tokens = json.at("generation").at("new_tokens").get<std::vector<int32_t>>();
  auto sequence = json.at("generation").at("sequence").get<std::vector<int32_t>>();
  out.prompt.assign(sequence.begin(), sequence.end() - static_cast<long>(out.new_tokens.size()));
  return out;
}

std::string comma_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out;
}

// A copy of the llama fixture with the byte-level tokenizer.json (id b = byte b).
std::string llama_with_byte_tokenizer() {
  const std::string dir = test::scratch_dir() + "/model";
  fs::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(test::fixture(std::string("hf-tiny/llama/") + name), dir + "/" + name);
  }
  std::vector<std::string> id_text;
  write_file_atomic(dir + "/tokenizer.json", test::byte_level_tokenizer_json(&id_text));
  return dir;
}

TEST(PromptsFileCli, EachLineEqualsItsSingleRunInInputOrder) {
  const std::string model = test::fixture("hf-tiny/llama");
  const HfGeneration hf = hf_generation("llama");
  const std::string file = test::scratch_dir() + "/prompts.jsonl";
  write_file_atomic(file,
                    "{\"prompt_ids\": [5, 9, 31, 77, 120, 4, 18, 250, 3, 3, 61, 40, 200, 11, 7, 90, 14, 2, 5, 6, 7, 8], "
                    "\"id\": \"long\"}\n"
                    "{\"prompt_ids\": " + nlohmann::json(hf.prompt).dump() + ", \"max_new_tokens\": 8, \"id\": 2}\n"
                    "\n"
                    "{\"prompt_ids\": [17], \"max_new_tokens\": 3, \"temperature\": 1.5, \"top_k\": 30, \"seed\": 5}\n"
                    "{\"prompt_ids\": [100, 101, 102], \"repetition_penalty\": 1.5}\n");
  // (flag settings, line settings) of each line for the single runs below.
  const std::vector<std::pair<std::vector<int32_t>, std::string>> singles = {
      {{5, 9, 31, 77, 120, 4, 18, 250, 3, 3, 61, 40, 200, 11, 7, 90, 14, 2, 5, 6, 7, 8}, " --max-new-tokens 6"},
      {hf.prompt, " --max-new-tokens 8"},
      {{17}, " --max-new-tokens 3 --temperature 1.5 --top-k 30 --seed 5"},
      {{100, 101, 102}, " --max-new-tokens 6 --repetition-penalty 1.5"}};

  for (const std::string batch_flag : {"", " --max-batch 2"}) {
    auto run = test::run_forma("generate --model " + model + " --prompts-file " + file + " --max-new-tokens 6" +
                                   batch_flag,
                               /*with_stderr=*/false);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto lines = test::json_lines(run.output);
    ASSERT_EQ(lines.size(), 4u) << run.output;
    EXPECT_EQ(lines[0].at("id"), "long");
    EXPECT_EQ(lines[1].at("id"), 2);
    EXPECT_FALSE(lines[2].contains("id"));
    EXPECT_EQ(lines[1].at("output_ids").get<std::vector<int32_t>>(), hf.new_tokens);
    for (size_t i = 0; i < singles.size(); ++i) {
      EXPECT_EQ(lines[i].at("index"), i);
      EXPECT_EQ(lines[i].at("prompt_ids").get<std::vector<int32_t>>(), singles[i].first);
      auto single = test::run_forma("generate --model " + model + " --prompt-ids " + comma_ids(singles[i].first) +
                                        singles[i].second + " --json",
                                    /*with_stderr=*/false);
      ASSERT_EQ(single.exit_code, 0) << single.output;
      auto expected = nlohmann::json::parse(single.output);
      EXPECT_EQ(lines[i].at("output_ids"), expected.at("output_ids")) << "line " << i;
      EXPECT_EQ(lines[i].at("stop_reason"), expected.at("stop_reason")) << "line " << i;
    }
    EXPECT_EQ(lines[2].at("output_ids").size(), 3u);
  }
}

TEST(PromptsFileCli, TextPromptsUseTheFolderTokenizer) {
  const std::string model = llama_with_byte_tokenizer();
  const std::string file = test::scratch_dir() + "/prompts.jsonl";
  write_file_atomic(file, "{\"prompt\": \"Hi!\"}\n{\"prompt\": \"Call me Ishmael.\", \"max_new_tokens\": 4}\n");
  auto run = test::run_forma("generate --model " + model + " --prompts-file " + file + " --max-new-tokens 10",
                             /*with_stderr=*/false);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto lines = test::json_lines(run.output);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("prompt_ids").get<std::vector<int32_t>>(), (std::vector<int32_t>{'H', 'i', '!'}));
  for (auto [line, prompt, tokens] : {std::tuple{0, "Hi!", "10"}, std::tuple{1, "'Call me Ishmael.'", "4"}}) {
    auto single = test::run_forma("generate --model " + model + " --prompt " + prompt + " --max-new-tokens " +
                                      tokens + " --json",
                                  /*with_stderr=*/false);
    ASSERT_EQ(single.exit_code, 0) << single.output;
    auto expected = nlohmann::json::parse(single.output);
    EXPECT_EQ(lines[line].at("output_ids"), expected.at("output_ids"));
    EXPECT_EQ(lines[line].at("text"), expected.at("text"));
  }
}

TEST(PromptsFileCli, MalformedLineIsAnErrorNamingFileLineAndField) {
  const std::string file = test::scratch_dir() + "/prompts.jsonl";
  write_file_atomic(file, "{\"prompt_ids\": [1, 2]}\n{\"prompt_ids\": [3], \"top_k\": \"many\"}\n");
  auto run = test::run_forma("generate --model " + test::fixture("hf-tiny/llama") + " --prompts-file " + file);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find(file + ":2: field \"top_k\" must be an integer"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("output_ids"), std::string::npos) << "no results before the error";
  // --prompts-file excludes --prompt-ids.
  EXPECT_EQ(test::run_forma("generate --model " + test::fixture("hf-tiny/llama") + " --prompts-file " + file +
                            " --prompt-ids 1,2")
                .exit_code,
            1);
}

class LogitsCli : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsCli, WrittenLogitsEqualHfReferenceLogits) {
  const std::string dir = test::fixture("hf-tiny/" + GetParam());
  auto json = nlohmann::json::parse(read_file(dir + "/reference.json"));
  auto input_ids = json.at("inputs").at("input_ids").at(0).get<std::vector<int32_t>>();
  ASSERT_EQ(json.at("forward").at("logits").at("tensor"), "logits");
  torch::Tensor expected = load_tensors(dir + "/reference.safetensors", LoadAs::Float32).at("logits").select(0, 0);

  const std::string out = test::scratch_dir() + "/logits.safetensors";
  auto run = test::run_forma("logits --model " + dir + " --prompt-ids " + comma_ids(input_ids) + " --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto written = load_tensors(out);
  ASSERT_EQ(written.at("logits").scalar_type(), torch::kFloat);
  ASSERT_EQ(written.at("logits").sizes(), expected.sizes());  // [T, V]
  EXPECT_LT((written.at("logits") - expected).abs().max().item<double>(), 1e-4);
  torch::Tensor ids = written.at("input_ids");
  EXPECT_EQ(std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()),
            std::vector<int64_t>(input_ids.begin(), input_ids.end()));
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, LogitsCli, ::testing::Values("llama", "gpt2"));

TEST(LogitsCliText, PromptTextGivesTheLogitsOfItsIds) {
  const std::string model = llama_with_byte_tokenizer();
  const std::string from_text = test::scratch_dir() + "/text.safetensors";
  const std::string from_ids = test::scratch_dir() + "/ids.safetensors";
  ASSERT_EQ(test::run_forma("logits --model " + model + " --prompt 'Hi!' --out " + from_text).exit_code, 0);
  ASSERT_EQ(test::run_forma("logits --model " + model + " --prompt-ids 72,105,33 --out " + from_ids).exit_code, 0);
  auto text = load_tensors(from_text), ids = load_tensors(from_ids);
  EXPECT_TRUE(torch::equal(text.at("input_ids"), ids.at("input_ids")));
  EXPECT_TRUE(torch::equal(text.at("logits"), ids.at("logits")));
  EXPECT_EQ(text.at("logits").sizes(), (std::vector<int64_t>{3, 320}));
}

TEST(LogitsCliText, BadInputsAreErrorsAndWriteNothing) {
  const std::string llama = test::fixture("hf-tiny/llama");
  const std::string out = test::scratch_dir() + "/bad.safetensors";
  auto outside = test::run_forma("logits --model " + llama + " --prompt-ids 1,320 --out " + out);
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.output.find("320"), std::string::npos) << outside.output;
  EXPECT_EQ(test::run_forma("logits --model " + llama + " --prompt hello --out " + out).exit_code, 1);  // no tokenizer
  EXPECT_EQ(test::run_forma("logits --model " + llama + " --prompt-ids " + comma_ids(std::vector<int32_t>(65, 4)) +
                            " --out " + out)
                .exit_code,
            1);  // longer than the context (64)
  EXPECT_FALSE(fs::exists(out));
}

TEST(BenchGenerateCli, RunsOnAFixtureAndPrintsTheColumns) {
  const std::string model = test::fixture("hf-tiny/llama");
  auto table = test::run_forma("bench generate --model " + model + " --batch-sizes 1,3 --pp 8 --tg 4 --reps 2",
                               /*with_stderr=*/false);
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("| batch | test"), std::string::npos) << table.output;
  for (const char* row : {"|     1 | pp8 ", "|     1 | tg4 ", "|     3 | pp8 ", "|     3 | tg4 "}) {
    EXPECT_NE(table.output.find(row), std::string::npos) << row << "\n" << table.output;
  }
  EXPECT_NE(table.output.find(" ± "), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("read bandwidth "), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("of bandwidth |"), std::string::npos) << table.output;

  auto json = test::run_forma("bench generate --model tiny-llama --batch-sizes 2 --pp 4 --tg 2 --reps 1 --bandwidth-mib 32 --json",
                              /*with_stderr=*/false);
  ASSERT_EQ(json.exit_code, 0) << json.output;
  auto rows = nlohmann::json::parse(json.output);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("test"), "pp4");
  EXPECT_EQ(rows[1].at("test"), "tg2");
  EXPECT_EQ(rows[0].at("batch"), 2);
  EXPECT_EQ(rows[0].at("model"), "tiny-llama (random weights)");
  EXPECT_EQ(rows[1].at("samples").size(), 1u);
  EXPECT_GT(rows[1].at("tokens_per_sec_mean").get<double>(), 0.0);
  // Weights read per token and the share of the read bandwidth measured in the same run.
  for (const auto& row : rows) {
    EXPECT_GT(row.at("weight_bytes_per_token").get<double>(), 0.0) << row.dump();
    EXPECT_GT(row.at("weight_gbytes_per_sec").get<double>(), 0.0) << row.dump();
    EXPECT_GT(row.at("memory_bandwidth_gbytes_per_sec").get<double>(), 0.0) << row.dump();
    EXPECT_GT(row.at("bandwidth_fraction").get<double>(), 0.0) << row.dump();
  }
  // A decode step reads every weight once for its 2 tokens; the prefill once for its 2 x 4.
  EXPECT_NEAR(rows[0].at("weight_bytes_per_token").get<double>() * 8,
              rows[1].at("weight_bytes_per_token").get<double>() * 2,
              rows[1].at("weight_bytes_per_token").get<double>());
  // The context bounds --pp and --tg.
  EXPECT_EQ(test::run_forma("bench generate --model " + model + " --pp 64 --tg 4 --reps 1").exit_code, 1);
}

}  // namespace
}  // namespace forma
