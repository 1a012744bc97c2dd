// `forma train --config RECIPE.yaml [--set key=value ...] [--resume [CHECKPOINT]]`
#include <CLI/CLI.hpp>

#include "forma/cli/command.h"
#include "forma/core/log.h"
#include "forma/train/recipe.h"
#include "forma/train/stop_signal.h"
#include "forma/train/trainer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::train_command {

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume_from;
  int64_t stop_after = -1;
};

void run_train(const TrainArgs& args, bool resume) {
  // From the start, so that a signal while the model and data load also stops cleanly.
  forma::train::install_stop_handlers();
  auto recipe = forma::train::load_recipe(args.config, args.overrides);
  forma::train::TrainerOptions options;
  options.stop_after_step = args.stop_after;
  forma::train::Trainer trainer(recipe, options);
  if (resume) trainer.resume(args.resume_from);
  auto end = trainer.run();
  if (end == forma::train::RunEnd::stopped) {
    forma::log::warn("training stopped at step {}; continue with: forma train --config {} --resume",
                     trainer.state().step, args.config);
  } else {
    forma::log::info("training finished at step {}; checkpoints in {}", trainer.state().step,
                     trainer.checkpoints_dir());
  }
}

forma::cli::CommandRegistration reg(20, [](CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "train a model from a recipe (configs/recipes/*.yaml)");
  cmd->add_option("--config", args->config, "recipe YAML file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", args->overrides, "override a recipe key: section.key=value (repeatable)");
  auto* resume = cmd->add_option("--resume", args->resume_from,
                                 "continue from OUTPUT_DIR/checkpoints/latest, or from the named checkpoint")
                     ->expected(0, 1);
  cmd->add_option("--stop-after", args->stop_after,
                  "stop with a checkpoint after this step, as on SIGTERM (jobs with a time limit)");
  cmd->callback([args, resume] { run_train(*args, resume->count() > 0); });
});

}  // namespace forma::cli::train_command
