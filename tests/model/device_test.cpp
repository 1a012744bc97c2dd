// --device / training.device resolution, and that this build has CUDA and NCCL compiled in exactly
// when the torch wheel it was built against has them (asked of the wheel itself, through Python).
#include <gtest/gtest.h>

#include "forma/model/device.h"
#include "forma/parallel/nccl_group.h"
#include "test_paths.h"

namespace forma {
namespace {

TEST(Device, NamesResolveAndErrorsNameTheFlag) {
  EXPECT_EQ(resolve_device("cpu", "--device"), torch::Device(torch::kCPU));
  const torch::Device automatic = resolve_device("auto", "--device");
  EXPECT_EQ(automatic.is_cuda(), cuda_device_count() > 0);
  for (const char* bad : {"gpu", "cuda:x", "cuda:", "CPU", ""}) {
    auto message = test::error_of([&] { resolve_device(bad, "--device"); });
    EXPECT_NE(message.find("--device"), std::string::npos) << bad << ": " << message;
  }
  if (cuda_device_count() == 0) {
    auto message = test::error_of([&] { resolve_device("cuda", "training.device"); });
    EXPECT_NE(message.find("training.device"), std::string::npos) << message;
    EXPECT_NE(message.find("no CUDA device"), std::string::npos) << message;
  } else {
    EXPECT_EQ(resolve_device("cuda", "--device", cuda_device_count() - 1).index(), cuda_device_count() - 1);
    auto message = test::error_of([&] { resolve_device("cuda", "--device", cuda_device_count()); });
    EXPECT_NE(message.find("local rank"), std::string::npos) << message;
  }
}

std::string ask_the_wheel(const std::string& expression) {
  auto r = test::run_command("'" + test::python() + "' -c 'import torch, torch.distributed; print(" + expression + ")'",
                             false);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output.substr(0, r.output.find('\n'));
}

TEST(Device, CudaAndNcclAreCompiledInWhenTheWheelHasThem) {
  EXPECT_EQ(cuda_compiled(), ask_the_wheel("torch.version.cuda is not None") == "True");
  if (cuda_compiled()) {
    // The runtime the wheel was built against, e.g. "13.0": its major.minor prefix.
    EXPECT_EQ(ask_the_wheel("torch.version.cuda").rfind(cuda_runtime_version().substr(0, 3), 0), 0u)
        << cuda_runtime_version();
  }
  EXPECT_EQ(parallel::nccl_compiled(), ask_the_wheel("torch.distributed.is_nccl_available()") == "True");
  EXPECT_EQ(cuda_device_count(), std::stoi(ask_the_wheel("torch.cuda.device_count()")));
}

TEST(Device, EnvCommandReportsTheBuild) {
  auto r = test::run_forma("env --json", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["libtorch"], ask_the_wheel("torch.__version__").substr(0, j["libtorch"].get<std::string>().size()));
  EXPECT_EQ(j["cuda_compiled"], cuda_compiled());
  EXPECT_EQ(j["cuda_devices"], cuda_device_count());
  EXPECT_GE(j["threads"].get<int>(), 1);
}

}  // namespace
}  // namespace forma

namespace forma {
namespace {

int threads_of_bench(const std::string& flags) {
  auto r = test::run_forma("bench generate --model '" + test::fixture("hf-tiny/llama") +
                               "' --batch-sizes 1 --pp 4 --tg 2 --reps 1 --json --device cpu " + flags,
                           false);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? nlohmann::json::parse(r.output).at(0).at("threads").get<int>() : -1;
}

TEST(Threads, DefaultIsTheAffinityMasksCoresAndTheFlagSetsThem) {
  // nproc counts the cores this process may run on (its affinity mask), as --threads' default does.
  auto nproc = test::run_command("nproc", false);
  ASSERT_EQ(nproc.exit_code, 0);
  EXPECT_EQ(threads_of_bench(""), std::stoi(nproc.output));
  EXPECT_EQ(threads_of_bench("--threads 1"), 1);
  auto pinned = test::run_command("taskset -c 0 '" + test::forma_binary() + "' env --json", false);
  if (pinned.exit_code == 0) {
    EXPECT_EQ(nlohmann::json::parse(pinned.output)["threads"], 1) << pinned.output;
  }
  auto bad = test::run_forma("generate --model '" + test::fixture("hf-tiny/llama") + "' --prompt-ids 1 --threads 100000");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("--threads"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace forma
