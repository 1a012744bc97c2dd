// `forma bench train --config RECIPE [--steps N] [--warmup N] [--set ...]`: training speed on random
// tokens (the model, batch shape and optimizer of the recipe; no data, no files written).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <cstdio>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/train/matmul_peak.h"
#include "forma/train/recipe.h"
#include "forma/train/trainer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::bench_train_command {

struct BenchArgs {
  std::string config;
  std::vector<std::string> overrides;
  int steps = 5;
  int warmup = 2;
};

void run_bench(const BenchArgs& args) {
  forma::check(args.steps > 0 && args.warmup >= 0, "--steps must be > 0 and --warmup >= 0");
  auto overrides = args.overrides;
  overrides.push_back("training.max_steps=" + std::to_string(args.steps + args.warmup));
  auto recipe = forma::train::load_recipe(args.config, overrides);
  forma::train::Trainer trainer(recipe, {/*random_data=*/true, /*write_outputs=*/false});
  for (int i = 0; i < args.warmup; ++i) trainer.step();
  double peak = trainer.matmul_peak();
  double seconds = 0, loss = 0;
  for (int i = 0; i < args.steps; ++i) {
    auto r = trainer.step();
    seconds += r.seconds;
    loss = r.loss;
    forma::log::info("bench step {}/{}: {:.3f} s, loss {:.4f}", i + 1, args.steps, r.seconds, r.loss);
  }
  // Peak resident memory of every rank (what /usr/bin/time -v calls maximum resident set size).
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto peak_rss_mb = trainer.data_parallel().gather_world(static_cast<double>(usage.ru_maxrss) / 1024.0);
  if (!trainer.data_parallel().is_main()) return;  // under forma launch: rank 0 reports for all
  double tokens_per_sec = static_cast<double>(trainer.tokens_per_step()) * args.steps / seconds;
  double mfu = trainer.flops_per_token() * tokens_per_sec / (peak * 1e9);
  std::printf("tokens/s %.1f  step %.3f s  MFU %.1f%% (peak %.0f GFLOP/s, %.3g FLOPs/token)  peak RSS %s MB\n",
              tokens_per_sec, seconds / args.steps, 100 * mfu, peak, trainer.flops_per_token(),
              fmt::format("{:.0f}", fmt::join(peak_rss_mb, " / ")).c_str());
  nlohmann::json j = {{"bench", "train"},          {"config", args.config},
                      {"steps", args.steps},       {"tokens_per_step", trainer.tokens_per_step()},
                      {"tokens_per_sec", tokens_per_sec}, {"step_time_sec", seconds / args.steps},
                      {"mfu", mfu},                {"peak_gflops", peak},
                      {"flops_per_token", trainer.flops_per_token()}, {"last_loss", loss},
                      {"peak_rss_mb_per_rank", peak_rss_mb}};
  std::printf("%s\n", j.dump().c_str());
}

forma::cli::CommandRegistration reg(80, [](CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = subcommand_group(app, "bench", "benchmarks")
                  ->add_subcommand("train", "training speed: tokens/s, step time, MFU");
  cmd->add_option("--config", args->config, "recipe YAML file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--steps", args->steps, "timed steps (default 5)");
  cmd->add_option("--warmup", args->warmup, "untimed steps first (default 2)");
  cmd->add_option("--set", args->overrides, "override a recipe key: section.key=value (repeatable)");
  cmd->callback([args] { run_bench(*args); });
});

}  // namespace forma::cli::bench_train_command
