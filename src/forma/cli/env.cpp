// `forma env [--json]`: what this build runs on — LibTorch's version, whether CUDA and NCCL are
// compiled in and which GPUs are visible, the BLAS and oneDNN LibTorch uses, its threads, and the
// CPU's vector features. The first thing to paste into a bug report.
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/model/device.h"
#include "forma/parallel/nccl_group.h"

namespace forma::cli::env_command {

// The flags of /proc/cpuinfo's first processor that matter for LibTorch's CPU kernels.
std::vector<std::string> cpu_vector_features() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::vector<std::string> found;
    for (std::string w; words >> w;) {
      for (const char* f : {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                            "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "avx_vnni"}) {
        if (w == f) found.push_back(w);
      }
    }
    return found;
  }
  return {};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// The value of "KEY=value" in at::show_config()'s build settings, e.g. BLAS_INFO.
std::string build_setting(const std::string& config, const std::string& key) {
  auto at = config.find(key + "=");
  if (at == std::string::npos) return "";
  auto begin = at + key.size() + 1;
  return config.substr(begin, config.find_first_of(", \n", begin) - begin);
}

void run_env(bool json) {
  const std::string config = at::show_config();
  nlohmann::json j = {
      {"libtorch", TORCH_VERSION},
      {"cuda_compiled", cuda_compiled()},
      {"cuda_runtime", cuda_runtime_version()},
      {"cuda_devices", cuda_device_count()},
      {"nccl_compiled", parallel::nccl_compiled()},
      {"blas", build_setting(config, "BLAS_INFO")},
      {"mkl", at::hasMKL()},
      {"onednn", at::hasMKLDNN()},
      {"cpu_capability", at::get_cpu_capability()},
      {"cpu", cpu_model()},
      {"cpu_features", cpu_vector_features()},
      {"threads", default_threads()},
      {"libtorch_default_threads", at::get_num_threads()},
      {"default_device", resolve_device("auto", "auto").str()},
  };
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::string features;
  for (const auto& f : j["cpu_features"]) features += (features.empty() ? "" : " ") + f.get<std::string>();
  std::printf("LibTorch        %s\n", TORCH_VERSION);
  std::printf("CUDA            %s\n", cuda_compiled() ? ("compiled in (runtime " + cuda_runtime_version() + ")").c_str()
                                                      : "not compiled in");
  std::printf("GPUs visible    %d\n", cuda_device_count());
  std::printf("NCCL            %s\n", parallel::nccl_compiled() ? "compiled in" : "not compiled in");
  std::printf("default device  %s (--device auto, training.device: auto)\n",
              j["default_device"].get<std::string>().c_str());
  std::printf("BLAS            %s%s\n", j["blas"].get<std::string>().c_str(), at::hasMKL() ? " (MKL)" : "");
  std::printf("oneDNN          %s\n", at::hasMKLDNN() ? "yes" : "no");
  std::printf("CPU             %s\n", j["cpu"].get<std::string>().c_str());
  std::printf("CPU kernels     %s (features: %s)\n", at::get_cpu_capability().c_str(), features.c_str());
  std::printf("threads         %d (--threads default: the cores of this process's affinity mask); LibTorch's own "
              "default %d\n", default_threads(), at::get_num_threads());
}

CommandRegistration reg(95, [](CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("env", "what this build runs on: LibTorch, CUDA, NCCL, GPUs, BLAS, CPU features");
  cmd->add_flag("--json", *json, "print as JSON");
  cmd->callback([json] { run_env(*json); });
});

}  // namespace forma::cli::env_command
