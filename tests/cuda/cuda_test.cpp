// Tests that need a CUDA GPU (ctest label `cuda`; bench/gpu_check.sh runs them). Each compares the
// GPU against the CPU run of the same thing, which the rest of the suite checks against Hugging Face.
// Without a GPU every test skips, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "forma/model/device.h"
#include "forma/model/hf_io.h"
#include "forma/train/recipe.h"
#include "forma/train/trainer.h"
#include "test_paths.h"
#include "train/train_fixture.h"

namespace forma {
namespace {

#define REQUIRE_GPUS(n)                                                                               \
  if (cuda_device_count() < (n)) GTEST_SKIP() << "needs " << (n) << " CUDA device(s), " << cuda_device_count() \
                                              << " visible"

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.cpu().to(torch::kDouble) - b.cpu().to(torch::kDouble)).norm() / b.cpu().to(torch::kDouble).norm())
      .item<double>();
}

class CudaFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFixture, LogitsOnTheGpuEqualTheCpu) {
  REQUIRE_GPUS(1);
  const std::string dir = test::fixture("hf-tiny/" + GetParam());
  CausalLM cpu = load_pretrained(dir);
  CausalLM gpu = load_pretrained(dir, LoadOptions{torch::kFloat, torch::Device(torch::kCUDA, 0)});
  torch::NoGradGuard no_grad;
  auto ids = torch::arange(1, 25, torch::kLong).unsqueeze(0);
  // TF32 is off by default for matmuls in LibTorch: fp32 on the GPU agrees to fp32 rounding.
  EXPECT_LT(relative_error(gpu->forward(ids.cuda()), cpu->forward(ids)), 1e-4);
}

TEST_P(CudaFixture, GreedyGenerationOnTheGpuEqualsTheCpu) {
  REQUIRE_GPUS(1);
  const std::string dir = test::fixture("hf-tiny/" + GetParam());
  auto r_cpu = test::run_forma("generate --model '" + dir + "' --prompt-ids 1,2,3,4 --max-new-tokens 12 --json --device cpu", false);
  auto r_gpu = test::run_forma("generate --model '" + dir + "' --prompt-ids 1,2,3,4 --max-new-tokens 12 --json --device cuda", false);
  ASSERT_EQ(r_gpu.exit_code, 0) << r_gpu.output;
  EXPECT_EQ(nlohmann::json::parse(r_gpu.output)["output_ids"], nlohmann::json::parse(r_cpu.output)["output_ids"]);
}

INSTANTIATE_TEST_SUITE_P(All, CudaFixture, ::testing::Values("gpt2", "llama", "mistral", "qwen2", "mixtral"));

train::Recipe gpu_recipe(const std::string& dir, std::vector<std::string> extra) {
  auto overrides = test::tiny_overrides(test::write_pattern_dataset(dir), dir + "/out");
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return train::load_recipe(test::tiny_recipe_path(), overrides);
}

TEST(CudaTraining, Fp32Bf16AndFp16FollowTheCpuCurve) {
  REQUIRE_GPUS(1);
  auto dir = test::scratch_dir();
  train::Trainer cpu(gpu_recipe(dir, {"training.device=cpu"}), {false, false});
  train::Trainer fp32(gpu_recipe(dir, {"training.device=cuda"}), {false, false});
  train::Trainer bf16(gpu_recipe(dir, {"training.device=cuda", "training.precision=bf16"}), {false, false});
  train::Trainer fp16(gpu_recipe(dir, {"training.device=cuda", "training.precision=fp16"}), {false, false});
  EXPECT_TRUE(fp32.device().is_cuda());
  for (int i = 0; i < 20; ++i) {
    double reference = cpu.step().loss;
    EXPECT_NEAR(fp32.step().loss, reference, 1e-3 * reference) << "fp32, step " << i + 1;
    EXPECT_NEAR(bf16.step().loss, reference, 2e-2 * reference) << "bf16, step " << i + 1;
    auto half = fp16.step();
    if (!half.skipped) {
      EXPECT_NEAR(half.loss, reference, 2e-2 * reference) << "fp16, step " << i + 1;
    }
  }
}

TEST(CudaTraining, CheckpointWrittenOnTheGpuResumesOnTheCpuAndBack) {
  REQUIRE_GPUS(1);
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto args = [&](const std::string& out, const std::string& device, std::vector<std::string> extra) {
    std::string a = "train --config '" + test::tiny_recipe_path() + "' --set training.max_steps=6 --set "
                    "checkpoint.interval=2 --set training.device=" + device;
    for (auto& o : test::tiny_overrides(data, out)) a += " --set '" + o + "'";
    for (auto& e : extra) a += " " + e;
    return a;
  };
  ASSERT_EQ(test::run_forma(args(dir + "/cpu", "cpu", {})).exit_code, 0);
  auto gpu_part = test::run_forma(args(dir + "/mixed", "cuda", {"--stop-after 2"}));
  ASSERT_EQ(gpu_part.exit_code, 0) << gpu_part.output;
  auto cpu_part = test::run_forma(args(dir + "/mixed", "cpu", {"--resume", "--stop-after 4"}));
  ASSERT_EQ(cpu_part.exit_code, 0) << cpu_part.output;
  auto gpu_again = test::run_forma(args(dir + "/mixed", "cuda", {"--resume"}));
  ASSERT_EQ(gpu_again.exit_code, 0) << gpu_again.output;
  auto a = test::logged_steps(dir + "/cpu/metrics.jsonl"), b = test::logged_steps(dir + "/mixed/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i].loss, b[i].loss, 1e-3 * a[i].loss) << "step " << a[i].step;
}

TEST(CudaTraining, NcclDataParallelFollowsOneProcess) {
  REQUIRE_GPUS(2);
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto train = [&](const std::string& launcher, const std::string& out) {
    std::string a = launcher + " train --config '" + test::tiny_recipe_path() +
                    "' --set training.max_steps=6 --set training.grad_accum_steps=2 --set training.micro_batch_size=2 "
                    "--set training.device=cuda --set parallel.zero_stage=1";
    for (auto& o : test::tiny_overrides(data, out)) a += " --set '" + o + "'";
    return test::run_forma(a);
  };
  auto one = train("", dir + "/one");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = train("launch --nproc-per-node 2 -- '" + test::forma_binary() + "'", dir + "/two");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto a = test::logged_steps(dir + "/one/metrics.jsonl"), b = test::logged_steps(dir + "/two/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i].loss, b[i].loss, 1e-4 * a[i].loss) << "step " << a[i].step;
}

}  // namespace
}  // namespace forma
