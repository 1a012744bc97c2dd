// `forma bench attention --model MODEL --seq-len T [--batch B] [--kernel fused|explicit]
// [--threads N]`: peak memory and time of one training forward+backward (random weights and tokens,
// no optimizer) with one attention kernel. A process's peak RSS never goes down, so each kernel
// and length is measured in a process of its own (bench/attention_memory.sh runs the table).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::bench_attention_command {

struct BenchAttentionArgs {
  std::string model;
  int64_t batch = 1;
  int64_t seq_len = 2048;
  std::string kernel = "fused";
  int threads = 0;
  uint64_t seed = 1234;
  std::string device = "auto";
};

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void run_bench_attention(const BenchAttentionArgs& args) {
  check(args.batch > 0 && args.seq_len > 1, "--batch must be > 0 and --seq-len > 1");
  check(args.kernel == "fused" || args.kernel == "explicit", "--kernel must be fused or explicit, not '{}'",
        args.kernel);
  apply_threads(args.threads);
  // The sequence may exceed max_position_embeddings: RoPE tables are computed for any length, and
  // this measures memory, not the quality of positions the model never trained on.
  CausalLM model(load_model_config(args.model));
  model->init_weights(args.seed);
  const torch::Device device = device_from_flag(args.device);
  model->to(device);
  model->train();
  model->set_attention_kernel(args.kernel == "fused" ? AttentionKernel::Fused : AttentionKernel::Explicit);
  torch::manual_seed(args.seed);
  torch::Tensor ids =
      torch::randint(0, model->config().vocab_size, {args.batch, args.seq_len}, torch::kLong).to(device);
  const double before_mb = peak_rss_mb();  // the model, its inputs and LibTorch itself

  auto start = std::chrono::steady_clock::now();
  torch::Tensor logits = model->forward(ids);  // first: aux_loss reads the router logits it leaves
  torch::Tensor loss = causal_lm_loss(logits, ids) + model->aux_loss();
  loss.backward();
  loss.item<double>();  // waits for a GPU to finish
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double peak_mb = peak_rss_mb();

  // On a GPU the peaks are of host memory; the GPU's own is not measured here.
  std::printf("attention %s, T %lld, batch %lld, %s, %d threads: forward+backward %.2f s, peak RSS %.0f MB "
              "(%.0f MB before the step)\n",
              args.kernel.c_str(), static_cast<long long>(args.seq_len), static_cast<long long>(args.batch),
              device.str().c_str(), torch::get_num_threads(), seconds, peak_mb, before_mb);
  nlohmann::json j = {{"bench", "attention"},       {"model", args.model},         {"kernel", args.kernel},
                      {"seq_len", args.seq_len},    {"batch", args.batch},         {"threads", torch::get_num_threads()},
                      {"step_time_sec", seconds},   {"peak_rss_mb", peak_mb},      {"rss_before_step_mb", before_mb},
                      {"loss", loss.item<double>()}};
  std::printf("%s\n", j.dump().c_str());
}

forma::cli::CommandRegistration reg(82, [](CLI::App& app) {
  auto args = std::make_shared<BenchAttentionArgs>();
  auto* cmd = subcommand_group(app, "bench", "benchmarks")
                  ->add_subcommand("attention", "peak memory and time of one forward+backward with one attention kernel");
  cmd->add_option("--model", args->model, "preset name or config.json (random weights)")->required();
  cmd->add_option("--seq-len", args->seq_len, "tokens per sequence (default 2048)");
  cmd->add_option("--batch", args->batch, "sequences (default 1)");
  cmd->add_option("--kernel", args->kernel, "fused (scaled_dot_product_attention, default) or explicit");
  add_threads_option(cmd, &args->threads);
  cmd->add_option("--seed", args->seed, "weights and tokens (default 1234)");
  add_device_option(cmd, &args->device);
  cmd->callback([args] { run_bench_attention(*args); });
});

}  // namespace forma::cli::bench_attention_command
