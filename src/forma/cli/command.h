// Subcommands register themselves: each cli/*.cpp defines a `static CommandRegistration` naming a
// function that adds its subcommand to the app. main.cpp knows none of them by name.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace forma::cli {

using CommandSetup = std::function<void(CLI::App& app)>;

struct CommandRegistration {
  CommandRegistration(int order, CommandSetup setup);
};

// The registered setups, in `order`.
std::vector<CommandSetup> registered_commands();

// A group of subcommands that several files add to (e.g. `bench train`, `bench generate`): the
// existing subcommand `name`, or a new one requiring a subcommand of its own.
CLI::App* subcommand_group(CLI::App& app, const std::string& name, const std::string& description);

}  // namespace forma::cli
