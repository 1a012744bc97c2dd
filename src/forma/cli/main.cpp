// The `forma` binary: one CLI11 app; every subcommand lives in its own cli/*.cpp and registers itself.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <new>

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

}  // namespace

int main(int argc, char** argv) {
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
