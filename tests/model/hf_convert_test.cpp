// `forma convert` on the Hugging Face fixtures: f32 -> f32 reproduces every tensor of the source
// file bit for bit; bf16 gives exactly torch's rounding of each tensor and logits within bf16
// tolerance of transformers' reference.json; small shard sizes give HF's sharded layout (index with
// metadata.total_size and weight_map) that loads back exactly; bad flags and sources are clear
// errors that leave no output folder behind.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/hf_convert.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace forma {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

// Every tensor of a folder (single file or shards), as stored.
std::map<std::string, torch::Tensor> folder_tensors(const std::string& dir) {
  std::map<std::string, torch::Tensor> out;
  std::map<std::string, std::unique_ptr<SafetensorsFile>> open;
  for (const auto& [name, path] : hf_weight_files(dir)) {
    auto& file = open[path];
    if (!file) file = std::make_unique<SafetensorsFile>(path);
    out[name] = tensor_from(*file, name);
  }
  return out;
}

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  auto x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

class ConvertFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvertFixture, F32ToF32ReproducesEveryTensorBitExactly) {
  const std::string from = test::fixture("hf-tiny/" + GetParam());
  const std::string to = test::scratch_dir() + "/out";
  auto run = test::run_forma("convert --from " + from + " --to " + to + " --dtype f32");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_FALSE(fs::exists(to + "/model.safetensors.index.json"));
  auto theirs = load_tensors(from + "/model.safetensors");
  auto ours = load_tensors(to + "/model.safetensors");
  ASSERT_EQ(ours.size(), theirs.size());
  for (const auto& [name, t] : theirs) {
    ASSERT_TRUE(ours.count(name)) << name;
    EXPECT_TRUE(same_bytes(ours.at(name), t)) << name;
  }
  // config.json: the same fields and values (torch_dtype was float32 already).
  EXPECT_EQ(read_json_file(to + "/config.json"), read_json_file(from + "/config.json"));
  // reference.* are not weights of another format, so they are copied as they are.
  EXPECT_EQ(read_file(to + "/reference.json"), read_file(from + "/reference.json"));
}

TEST_P(ConvertFixture, Bf16GivesTorchRoundingAndLogitsWithinBf16Tolerance) {
  const std::string from = test::fixture("hf-tiny/" + GetParam());
  const std::string to = test::scratch_dir() + "/bf16";
  auto run = test::run_forma("convert --from " + from + " --to " + to + " --dtype bf16");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(read_json_file(to + "/config.json").at("torch_dtype"), "bfloat16");
  auto source = load_tensors(from + "/model.safetensors");
  auto converted = load_tensors(to + "/model.safetensors");
  for (const auto& [name, t] : source) {
    ASSERT_EQ(converted.at(name).scalar_type(), torch::kBFloat16) << name;
    EXPECT_TRUE(torch::equal(converted.at(name), t.to(torch::kBFloat16))) << name;
  }

  CausalLM model = load_pretrained(to);
  model->eval();
  torch::NoGradGuard no_grad;
  auto ref = load_tensors(from + "/reference.safetensors");
  torch::Tensor logits = model->forward(ref.at("input_ids"));
  // Against transformers' fp32 logits: torch.testing's bf16 rtol (1.6e-2), taken over the whole
  // tensor (elementwise it would fail on logits near zero). Twice that for MoE, where rounding may
  // change a top-k routing choice, a jump dense models do not have (mixtral measured 1.7e-2).
  const torch::Tensor& expected = ref.at("logits");
  const double relative = ((logits - expected).norm() / expected.norm()).item<double>();
  const double tolerance = model->config().is_moe() ? 3.2e-2 : 1.6e-2;
  EXPECT_LT(relative, tolerance) << "bf16 weights moved the logits too far";
  EXPECT_GT(relative, 0.0) << "the weights were not rounded";
  // And exactly the fp32 model with every weight rounded through bf16.
  CausalLM rounded = load_pretrained(from);
  rounded->eval();
  for (auto& p : rounded->parameters()) p.copy_(p.to(torch::kBFloat16).to(torch::kFloat));
  EXPECT_TRUE(torch::equal(rounded->forward(ref.at("input_ids")), logits));
  // bf16 -> f32 is exact: converting back gives the bf16 values, in f32 files.
  const std::string back = test::scratch_dir() + "/back";
  ASSERT_EQ(test::run_forma("convert --from " + to + " --to " + back + " --dtype f32").exit_code, 0);
  EXPECT_EQ(read_json_file(back + "/config.json").at("torch_dtype"), "float32");
  for (const auto& [name, t] : load_tensors(back + "/model.safetensors")) {
    EXPECT_TRUE(same_bytes(t, converted.at(name).to(torch::kFloat))) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(All, ConvertFixture, ::testing::Values("gpt2", "llama", "qwen2", "mixtral"));

TEST(Convert, SmallShardSizeGivesHfShardsThatLoadBackExactly) {
  const std::string from = test::fixture("hf-tiny/llama");
  const std::string to = test::scratch_dir() + "/sharded";
  const uint64_t limit = 40000;  // the 80 KB embedding and lm_head get shards of their own
  auto run = test::run_forma("convert --from " + from + " --to " + to + " --shard-size 40KB");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_FALSE(fs::exists(to + "/model.safetensors"));
  auto index = read_json_file(to + "/model.safetensors.index.json");
  // HF's index text: json.dumps(index, indent=2, sort_keys=True) + "\n".
  EXPECT_EQ(read_file(to + "/model.safetensors.index.json"), index.dump(2) + "\n");
  auto source = load_tensors(from + "/model.safetensors");
  uint64_t total = 0;
  for (const auto& [name, t] : source) total += t.numel() * t.element_size();
  EXPECT_EQ(index.at("metadata").at("total_size").get<uint64_t>(), total);
  ASSERT_EQ(index.at("weight_map").size(), source.size());

  // Shards named model-0000i-of-0000N, each under the limit unless it holds one larger tensor.
  std::map<std::string, std::vector<std::string>> shards;
  for (auto& [name, file] : index.at("weight_map").items()) shards[file.get<std::string>()].push_back(name);
  ASSERT_GE(shards.size(), 4u);
  size_t i = 0;
  for (const auto& [file, names] : shards) {
    char expected_name[64];
    std::snprintf(expected_name, sizeof expected_name, "model-%05zu-of-%05zu.safetensors", ++i, shards.size());
    EXPECT_EQ(file, expected_name);
    SafetensorsFile shard(to + "/" + file);
    EXPECT_EQ(shard.names().size(), names.size()) << file;
    uint64_t bytes = 0;
    for (const auto& name : names) bytes += shard.get(name).nbytes;
    EXPECT_TRUE(bytes <= limit || names.size() == 1) << file << ": " << bytes << " bytes";
  }

  // Loads back to the same tensors, bit for bit, and to the same model.
  auto loaded = folder_tensors(to);
  for (const auto& [name, t] : source) EXPECT_TRUE(same_bytes(loaded.at(name), t)) << name;
  CausalLM a = load_pretrained(from), b = load_pretrained(to);
  for (const auto& item : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), b->named_parameters()[item.key()])) << item.key();
  }
  // And back into one file.
  const std::string single = test::scratch_dir() + "/single";
  ASSERT_EQ(test::run_forma("convert --from " + to + " --to " + single).exit_code, 0);
  EXPECT_FALSE(fs::exists(single + "/model.safetensors.index.json"));
  for (const auto& [name, t] : load_tensors(single + "/model.safetensors")) {
    EXPECT_TRUE(same_bytes(t, source.at(name))) << name;
  }
}

TEST(Convert, CopiesTokenizerAndGenerationFilesButNotOtherWeights) {
  const std::string from = test::scratch_dir() + "/src";
  fs::create_directories(from);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(test::fixture(std::string("hf-tiny/llama/") + name), from + "/" + name);
  }
  write_file_atomic(from + "/tokenizer.json", "{\"model\": {}}");
  write_file_atomic(from + "/tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
  write_file_atomic(from + "/generation_config.json", "{\"eos_token_id\": 2}");
  write_file_atomic(from + "/pytorch_model.bin", "stale weights");
  ConvertResult result = convert_hf_folder(from, test::scratch_dir() + "/to/", {DType::F16, 1000000000});
  const std::string to = test::scratch_dir() + "/to";
  EXPECT_EQ(result.copied_files,
            (std::vector<std::string>{"generation_config.json", "tokenizer.json", "tokenizer_config.json"}));
  for (const auto& name : result.copied_files) EXPECT_EQ(read_file(to + "/" + name), read_file(from + "/" + name));
  EXPECT_FALSE(fs::exists(to + "/pytorch_model.bin"));
  EXPECT_EQ(read_json_file(to + "/config.json").at("torch_dtype"), "float16");
  EXPECT_EQ(SafetensorsFile(to + "/model.safetensors").get("lm_head.weight").dtype, DType::F16);
}

// Runs `args` and expects exit status 1 with all of `words` in the message.
void expect_convert_error(const std::string& args, const std::vector<std::string>& words) {
  auto run = test::run_forma("convert " + args);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  for (const auto& w : words) EXPECT_NE(run.output.find(w), std::string::npos) << w << " not in: " << run.output;
}

TEST(Convert, BadFlagsAndSourcesAreClearErrorsThatWriteNothing) {
  const std::string from = test::fixture("hf-tiny/llama");
  const std::string dir = test::scratch_dir();
  expect_convert_error("--from " + from + " --to " + dir + "/a --dtype int8", {"--dtype", "int8", "bf16"});
  expect_convert_error("--from " + dir + "/missing --to " + dir + "/a", {dir + "/missing", "not a folder"});
  EXPECT_THROW(convert_hf_folder(dir, dir + "/a", {}), Error);  // no config.json
  EXPECT_FALSE(fs::exists(dir + "/a"));

  // An existing, non-empty --to is refused and left alone.
  fs::create_directories(dir + "/full");
  write_file_atomic(dir + "/full/keep.txt", "mine");
  expect_convert_error("--from " + from + " --to " + dir + "/full", {dir + "/full", "not an empty folder"});
  EXPECT_EQ(read_file(dir + "/full/keep.txt"), "mine");

  // A source shard that turns out to be broken: no --to, and no temporary folder left behind.
  const std::string broken = dir + "/broken";
  fs::create_directories(broken);
  fs::copy_file(from + "/config.json", broken + "/config.json");
  fs::copy_file(from + "/model.safetensors", broken + "/model-00002-of-00002.safetensors");
  auto index = nlohmann::json{{"metadata", {{"total_size", 1}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& name : SafetensorsFile(from + "/model.safetensors").names()) {
    index["weight_map"][name] = "model-00002-of-00002.safetensors";
  }
  index["weight_map"]["extra.weight"] = "model-00001-of-00002.safetensors";
  write_file_atomic(broken + "/model.safetensors.index.json", index.dump());
  write_file_atomic(broken + "/model-00001-of-00002.safetensors", "truncated");
  const std::string out = dir + "/out/converted";
  expect_convert_error("--from " + broken + " --to " + out, {broken + "/model-00001-of-00002.safetensors"});
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(dir + "/out"));
}

TEST(Convert, ParsesSizesAsHfDoes) {
  EXPECT_EQ(parse_byte_size("2GB", "x"), 2000000000u);
  EXPECT_EQ(parse_byte_size("500mb", "x"), 500000000u);
  EXPECT_EQ(parse_byte_size("1GiB", "x"), 1073741824u);
  EXPECT_EQ(parse_byte_size("3KiB", "x"), 3072u);
  EXPECT_EQ(parse_byte_size("123", "x"), 123u);
  EXPECT_THROW(parse_byte_size("GB", "x"), Error);
  EXPECT_THROW(parse_byte_size("0", "x"), Error);
  EXPECT_THROW(parse_byte_size("2XB", "x"), Error);
  EXPECT_THROW(parse_byte_size("1.5GB", "x"), Error);
  EXPECT_THROW(parse_byte_size("99999999999999999GiB", "x"), Error);
}

}  // namespace
}  // namespace forma
