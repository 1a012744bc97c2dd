// Logging goes through spdlog. set_log_prefix() puts e.g. "[rank 1] " in front of every line so that
// the output of distributed workers can be told apart.
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace forma {

void init_logging(const std::string& prefix = "", bool verbose = false);

namespace log {
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;
}  // namespace log

}  // namespace forma
