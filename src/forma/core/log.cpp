#include "forma/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace forma {

void init_logging(const std::string& prefix, bool verbose) {
  spdlog::drop("forma");
  auto logger = spdlog::stderr_color_mt("forma");
  logger->set_pattern(prefix + "[%H:%M:%S] %^%l%$ %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace forma
