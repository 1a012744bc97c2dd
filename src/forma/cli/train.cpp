// `forma train --config RECIPE.yaml [--set key=value ...] [--resume [CHECKPOINT]]`
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>

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

// `text` as one word for a POSIX shell: as it is when that is safe, else in single quotes.
std::string shell_quote(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || std::strchr("_-+=.,/:@%", c) != nullptr;
  });
  if (safe) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The command that continues this run: the same recipe and overrides (output_dir among them), so
// that --resume finds this run's checkpoints; without --resume when nothing was saved yet.
std::string continue_command(const TrainArgs& args, bool has_checkpoint) {
  std::string command = "forma train --config " + shell_quote(args.config);
  for (const auto& o : args.overrides) command += " --set " + shell_quote(o);
  return has_checkpoint ? command + " --resume" : command;
}

void run_train(const TrainArgs& args, bool resume) {
  auto recipe = forma::train::load_recipe(args.config, args.overrides);
  forma::train::TrainerOptions options;
  options.stop_after_step = args.stop_after;
  forma::train::Trainer trainer(recipe, options);
  if (resume) trainer.resume(args.resume_from);
  auto end = trainer.run();
  if (end == forma::train::RunEnd::stopped) {
    // Step 0: stopped before the first step of a new run, nothing saved; else a checkpoint of the
    // step exists (saved now, or the one this run resumed from).
    const bool saved = trainer.state().step > 0;
    forma::log::warn("training stopped at step {}{}; continue with: {}", trainer.state().step,
                     saved ? "" : " (nothing trained, nothing saved)", continue_command(args, saved));
  } else {
    forma::log::info("training finished at step {}; checkpoints in {}", trainer.state().step,
                     trainer.checkpoints_dir());
  }
}

// `forma train` installs its stop handlers before anything else in the process runs: from the
// executable's .preinit_array, which the dynamic loader calls (with argc, argv, envp) after mapping
// the libraries and before any of their initializers, so before LibTorch's static initialization
// (about half a second) and main. What precedes it is the kernel's exec and the loader's mapping.
// Only the command is looked at: the first argument that is not an option (`forma -v train ...`).
void install_stop_handlers_early(int argc, char** argv, char** /*envp*/) {
  for (int i = 1; i < argc && argv[i] != nullptr; ++i) {
    if (argv[i][0] == '-') continue;
    if (std::strcmp(argv[i], "train") == 0) forma::train::install_stop_handlers();
    return;
  }
}
__attribute__((section(".preinit_array"), used)) void (*preinit_stop_handlers)(int, char**, char**) =
    install_stop_handlers_early;

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
  // Installed already before main (above); again when CLI11 reaches `train`, before its options are
  // read and long before the model and data load, for a command line the early look missed. A
  // SIGINT/SIGTERM from then on stops the run as documented (at the next step boundary with a
  // checkpoint, or before the first step with nothing to save), never kills it.
  cmd->preparse_callback([](std::size_t) { forma::train::install_stop_handlers(); });
  cmd->callback([args, resume] { run_train(*args, resume->count() > 0); });
});

}  // namespace forma::cli::train_command
