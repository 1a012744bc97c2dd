// `forma bench tp --model MODEL [--batch B] [--seq-len T] [--steps N] [--warmup N]
// [--sequence-parallel] [--threads N]`: forward + backward time of one training micro-batch with
// tensor parallelism over all launched ranks (tp = WORLD_SIZE; one process without a launcher),
// random tokens, no optimizer. Run it alone and under `forma launch --nproc-per-node N` to compare.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/model/hf_io.h"
#include "forma/parallel/collectives.h"
#include "forma/parallel/tensor_parallel_model.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::bench_tp_command {

struct BenchTpArgs {
  std::string model;
  int64_t batch = 4;
  int64_t seq_len = 128;
  int steps = 10;
  int warmup = 2;
  bool sequence_parallel = false;
  int threads = 0;
  uint64_t seed = 1234;
  std::string device = "auto";
};

// An HF folder loads its weights; a preset or config.json is initialised from the seed.
CausalLM bench_model(const BenchTpArgs& args) {
  if (std::filesystem::is_directory(args.model)) return load_pretrained(args.model);
  CausalLM model(load_model_config(args.model));
  model->init_weights(args.seed);
  return model;
}

void run_bench_tp(const BenchTpArgs& args) {
  check(args.steps > 0 && args.warmup >= 0, "--steps must be > 0 and --warmup >= 0");
  check(args.batch > 0 && args.seq_len > 1, "--batch must be > 0 and --seq-len > 1");
  auto env = parallel::detect_dist_env();
  // By default the cores of a node are divided among its ranks, so that runs with 1 and N
  // processes use the same cores.
  apply_threads(args.threads);
  parallel::MeshShape shape;
  shape.tp = env.world_size;
  const torch::Device device = device_from_flag(args.device);
  make_current(device);
  parallel::DeviceMesh mesh(env, shape, std::chrono::minutes(5), device);  // NCCL on GPUs, Gloo on the CPU
  CausalLM model = bench_model(args);
  model->to(device);
  model->train();
  auto plan = parallel::parallelize_tensor(model, mesh.group(parallel::Dim::tp), {args.sequence_parallel});
  torch::manual_seed(args.seed);  // the same tokens on every rank
  torch::Tensor ids =
      torch::randint(0, model->config().vocab_size, {args.batch, args.seq_len + 1}, torch::kLong).to(device);
  torch::Tensor inputs = ids.slice(1, 0, -1), targets = ids.slice(1, 1);

  std::vector<double> seconds;
  double loss_value = 0;
  for (int step = 0; step < args.warmup + args.steps; ++step) {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    parallel::barrier(mesh.world());  // every rank starts the step together
    auto start = std::chrono::steady_clock::now();
    torch::Tensor logits = model->forward(inputs);
    torch::Tensor loss = parallel::tensor_parallel_loss(plan, logits, targets) + model->aux_loss();
    loss.backward();
    parallel::sync_tensor_parallel_grads(model, plan);
    parallel::barrier(mesh.world());  // the step ends when the slowest rank is done
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    loss_value = loss.item<double>();
    if (step >= args.warmup) seconds.push_back(s);
    if (env.rank == 0) log::info("bench tp step {}/{}: {:.4f} s, loss {:.4f}", step + 1, args.warmup + args.steps, s,
                                 loss_value);
  }
  if (env.rank != 0) return;
  double total = 0, best = seconds[0];
  for (double s : seconds) {
    total += s;
    best = std::min(best, s);
  }
  const double mean = total / static_cast<double>(seconds.size());
  std::printf("tp %d%s, %d threads per rank: forward+backward %.4f s per step (best %.4f), %.0f tokens/s, loss %.4f\n",
              plan.size, args.sequence_parallel ? " + sequence parallel" : "", torch::get_num_threads(), mean, best,
              static_cast<double>(args.batch * args.seq_len) / mean, loss_value);
  nlohmann::json j = {{"bench", "tp"},
                      {"model", args.model},
                      {"tensor_parallel", plan.size},
                      {"sequence_parallel", args.sequence_parallel},
                      {"threads_per_rank", torch::get_num_threads()},
                      {"batch", args.batch},
                      {"seq_len", args.seq_len},
                      {"steps", args.steps},
                      {"step_time_sec", mean},
                      {"best_step_time_sec", best},
                      {"loss", loss_value}};
  std::printf("%s\n", j.dump().c_str());
}

forma::cli::CommandRegistration reg(81, [](CLI::App& app) {
  auto args = std::make_shared<BenchTpArgs>();
  auto* cmd = subcommand_group(app, "bench", "benchmarks")
                  ->add_subcommand("tp", "forward+backward time with tensor parallelism over the launched ranks");
  cmd->add_option("--model", args->model, "preset name, config.json or HF model folder")->required();
  cmd->add_option("--batch", args->batch, "sequences per step (default 4)");
  cmd->add_option("--seq-len", args->seq_len, "tokens per sequence (default 128)");
  cmd->add_option("--steps", args->steps, "timed steps (default 10)");
  cmd->add_option("--warmup", args->warmup, "untimed steps first (default 2)");
  cmd->add_flag("--sequence-parallel", args->sequence_parallel, "split norms and residuals along the sequence");
  add_threads_option(cmd, &args->threads);
  cmd->add_option("--seed", args->seed, "weights (unless an HF folder) and tokens (default 1234)");
  add_device_option(cmd, &args->device);
  cmd->callback([args] { run_bench_tp(*args); });
});

}  // namespace forma::cli::bench_tp_command
