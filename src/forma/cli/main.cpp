// The `forma` binary: one CLI11 app; every subcommand lives in its own cli/*.cpp and registers itself.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <new>
#include <string>

#include <unistd.h>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/core/log.h"

namespace forma::cli {

static std::multimap<int, CommandSetup>& registry() {
  static std::multimap<int, CommandSetup> commands;
  return commands;
}

CommandRegistration::CommandRegistration(int order, CommandSetup setup) {
  registry().emplace(order, std::move(setup));
}

std::vector<CommandSetup> registered_commands() {
  std::vector<CommandSetup> out;
  for (auto& [order, setup] : registry()) out.push_back(setup);
  return out;
}

CLI::App* subcommand_group(CLI::App& app, const std::string& name, const std::string& description) {
  try {
    return app.get_subcommand(name);
  } catch (const CLI::OptionNotFound&) {
    auto* group = app.add_subcommand(name, description);
    group->require_subcommand(1);
    return group;
  }
}

}  // namespace forma::cli

namespace {

// Every way a command can end, as an exit status (README, "Exit status"): 0 success, 1 any error
// (a bad flag, file, config key, or a failure while running), 130/143 only where a command says so.
int report(const char* message) {
  std::fprintf(stderr, "error: %s\n", message);
  return 1;
}

bool verbose() { return spdlog::get_level() <= spdlog::level::debug; }

// Output that could not be written (a full disk behind `> file`, a closed stdout) is lost output:
// the command failed even if everything before succeeded.
int check_stdout() {
  errno = 0;
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    int saved = errno;
    std::string reason = saved ? std::strerror(saved) : "write failed";
    std::fprintf(stderr, "error: writing standard output: %s\n", reason.c_str());
    return 1;
  }
  return 0;
}

// The decoding commands (generate, chat, logits, eval, bench generate) run hundreds of small
// LibTorch ops per token, each an OpenMP parallel region of libgomp, whose idle workers spin
// between regions by default (OMP_WAIT_POLICY unset: ~300k spins). On a machine whose cores are
// also busy with other work the spinning workers take the cores from the thread that issues the
// ops: measured on the 2-core development machine under load, fp32 decode of a 125M Llama ran at
// 5-6 tokens/s spinning and 16-19 passive (docs/generation.md). libgomp reads the policy once, in
// its initializer, from the environment the process started with (setting it from .preinit_array
// does not reach it: libc's own initializer resets `environ` to the original block afterwards), so
// the process sets it and re-executes itself, once. A policy the user set is kept.
bool decodes(int argc, char** argv) {
  std::string first, second;
  for (int i = 1; i < argc && argv[i] != nullptr; ++i) {
    if (argv[i][0] == '-') continue;
    if (first.empty()) {
      first = argv[i];
    } else {
      second = argv[i];
      break;
    }
  }
  return first == "generate" || first == "chat" || first == "logits" || first == "eval" ||
         first == "serve" || (first == "bench" && second == "generate");
}

void prefer_passive_openmp_threads(int argc, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || !decodes(argc, argv)) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // exec failed: run on with libgomp's default policy (the variable set now only reaches children).
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_threads(argc, argv);
  CLI::App app{"forma: train, fine-tune, evaluate, run and serve decoder-only language models"};
  app.require_subcommand(1);
  forma::init_logging();
  app.add_flag_callback("-v,--verbose", [] { spdlog::set_level(spdlog::level::debug); }, "debug logging");
  for (auto& setup : forma::cli::registered_commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message and a --help hint; its own codes (105, 106, ...) are not ours.
    app.exit(e);
    return 1;
  } catch (const forma::Error& e) {
    return report(e.what());
  } catch (const c10::Error& e) {
    // LibTorch's message without its C++ stack trace, which means nothing to a user; -v shows it.
    return report(verbose() ? e.what() : e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return report("out of memory (a size in the model config, recipe or input is larger than this "
                  "machine can hold)");
  } catch (const std::exception& e) {
    return report(e.what());
  }
  return check_stdout();
}
