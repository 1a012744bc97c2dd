// The `forma` binary: one CLI11 app; every subcommand lives in its own cli/*.cpp and registers itself.
#include <algorithm>
#include <cstdio>
#include <map>

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

int main(int argc, char** argv) {
  CLI::App app{"forma: train, fine-tune, evaluate, run and serve decoder-only language models"};
  app.require_subcommand(1);
  forma::init_logging();
  app.add_flag_callback("-v,--verbose", [] { spdlog::set_level(spdlog::level::debug); }, "debug logging");
  for (auto& setup : forma::cli::registered_commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const forma::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
