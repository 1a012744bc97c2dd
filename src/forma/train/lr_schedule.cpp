#include "forma/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "forma/core/error.h"

namespace forma::train {

LrSchedule::LrSchedule(const ScheduleConfig& config, double peak_lr, int64_t max_steps)
    : config_(config), peak_(peak_lr), min_(peak_lr * config.min_lr_ratio), max_steps_(max_steps) {
  check(config.type == "constant" || config.type == "linear" || config.type == "cosine" || config.type == "wsd",
        "schedule.type: unknown schedule '{}'", config.type);
}

double LrSchedule::at(int64_t step) const {
  const int64_t warmup = config_.warmup_steps;
  if (step <= warmup) return peak_ * static_cast<double>(step) / static_cast<double>(warmup);
  if (config_.type == "constant") return peak_;
  if (config_.type == "wsd") {
    auto decay_steps = static_cast<int64_t>(std::llround(config_.decay_fraction * static_cast<double>(max_steps_)));
    int64_t decay_start = std::max(warmup, max_steps_ - decay_steps);
    if (step <= decay_start) return peak_;
    double progress = std::min(1.0, static_cast<double>(step - decay_start) /
                                        static_cast<double>(std::max<int64_t>(1, max_steps_ - decay_start)));
    return peak_ + (min_ - peak_) * progress;
  }
  // Steps past max_steps (a resumed run given more steps) stay at the floor.
  double progress = std::min(1.0, static_cast<double>(step - warmup) /
                                      static_cast<double>(std::max<int64_t>(1, max_steps_ - warmup)));
  if (config_.type == "linear") return peak_ + (min_ - peak_) * progress;
  return min_ + (peak_ - min_) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace forma::train
