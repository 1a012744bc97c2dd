// torch tensors through safetensors files: every dtype round-trips bit-exactly, fp32 conversion on
// request, and HF folders with sharded or BF16 weights or bad tensors load or fail clearly.
#include "forma/model/tensor_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "forma/core/error.h"
#include "forma/model/hf_io.h"
#include "test_paths.h"

namespace forma {
namespace {

namespace fs = std::filesystem;

TEST(TensorIo, RoundTripsEveryDtype) {
  std::map<std::string, torch::Tensor> in = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}, torch::kDouble)},
      {"i64", torch::randint(-100, 100, {4}, torch::kInt64)},
      {"i32", torch::randint(-100, 100, {4}, torch::kInt32)},
      {"u8", torch::randint(0, 255, {3}, torch::kUInt8)},
      {"bool", torch::randint(0, 2, {3}).to(torch::kBool)},
      {"strided", torch::randn({4, 3}).t()},  // non-contiguous input
      {"scalar", torch::tensor(3.5f).reshape({})},
  };
  std::string path = test::scratch_dir() + "/all.safetensors";
  save_tensors(path, in);
  auto out = load_tensors(path);
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) {
    EXPECT_EQ(out.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(out.at(name), t)) << name;
  }
  auto as_fp32 = load_tensors(path, LoadAs::Float32);
  EXPECT_EQ(as_fp32.at("bf16").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(as_fp32.at("bf16"), in.at("bf16").to(torch::kFloat)));
  EXPECT_EQ(as_fp32.at("i64").scalar_type(), torch::kInt64);
}

// A copy of a fixture folder whose weights the test may then rewrite.
std::string copy_fixture(const std::string& arch) {
  std::string dir = test::scratch_dir() + "/" + arch;
  fs::create_directories(dir);
  fs::copy_file(test::fixture("hf-tiny/" + arch + "/config.json"), dir + "/config.json");
  return dir;
}

void expect_load_error(const std::string& dir, const std::string& words) {
  try {
    load_pretrained(dir);
    FAIL() << "loaded " << dir;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(dir), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  }
}

TEST(HfIo, LoadsShardedBf16Weights) {
  auto weights = load_tensors(test::fixture("hf-tiny/llama/model.safetensors"));
  std::string dir = copy_fixture("llama");
  std::map<std::string, torch::Tensor> a, b;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  int i = 0;
  for (const auto& [name, t] : weights) {
    bool first = i++ % 2 == 0;
    (first ? a : b)[name] = t.to(torch::kBFloat16);
    index["weight_map"][name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_tensors(dir + "/model-00001-of-00002.safetensors", a);
  save_tensors(dir + "/model-00002-of-00002.safetensors", b);
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  CausalLM model = load_pretrained(dir);
  auto params = model->named_parameters();
  for (const auto& [name, t] : weights) {
    EXPECT_TRUE(torch::equal(params[name], t.to(torch::kBFloat16).to(torch::kFloat))) << name;
  }
}

TEST(HfIo, MissingUnexpectedAndMisshapenTensorsAreNamed) {
  auto weights = load_tensors(test::fixture("hf-tiny/llama/model.safetensors"));
  std::string dir = copy_fixture("llama");
  auto missing = weights;
  missing.erase("model.layers.1.mlp.up_proj.weight");
  save_tensors(dir + "/model.safetensors", missing);
  expect_load_error(dir, "missing tensor 'model.layers.1.mlp.up_proj.weight'");

  auto extra = weights;
  extra["model.layers.7.mlp.up_proj.weight"] = torch::zeros({2});
  save_tensors(dir + "/model.safetensors", extra);
  expect_load_error(dir, "unexpected tensor 'model.layers.7.mlp.up_proj.weight'");

  auto misshapen = weights;
  misshapen["model.norm.weight"] = torch::zeros({63});
  save_tensors(dir + "/model.safetensors", misshapen);
  expect_load_error(dir, "'model.norm.weight' has shape 63");

  fs::remove(dir + "/model.safetensors");
  expect_load_error(dir, "no model.safetensors");
}

TEST(HfIo, Gpt2CheckpointsWithoutPrefixAndMaskBuffersLoad) {
  // The official gpt2 file was saved from GPT2Model: no "transformer." prefix, plus attn.bias
  // causal-mask buffers. Both variants must give the same model.
  auto weights = load_tensors(test::fixture("hf-tiny/gpt2/model.safetensors"));
  std::string dir = copy_fixture("gpt2");
  std::map<std::string, torch::Tensor> bare;
  for (const auto& [name, t] : weights) bare[name.substr(std::string("transformer.").size())] = t;
  bare["h.0.attn.bias"] = torch::ones({1, 1, 64, 64});
  save_tensors(dir + "/model.safetensors", bare);
  CausalLM a = load_pretrained(dir);
  CausalLM b = load_pretrained(test::fixture("hf-tiny/gpt2"));
  auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()]));
}

}  // namespace
}  // namespace forma
