// Learning-rate schedules with linear warm-up. Steps are numbered from 1: step s is the s-th
// optimizer update. Warm-up: lr * s / warmup_steps for s <= warmup_steps. After it:
//   constant: lr
//   linear:   from lr down to min_lr_ratio*lr at max_steps
//   cosine:   min + (lr - min) * (1 + cos(pi * progress)) / 2, progress 0..1 over the steps after warm-up
//   wsd:      lr (stable) until the last decay_fraction*max_steps steps, then linearly down to min
#pragma once
#include <cstdint>
#include <string>

#include "forma/train/recipe.h"

namespace forma::train {

class LrSchedule {
 public:
  LrSchedule(const ScheduleConfig& config, double peak_lr, int64_t max_steps);
  double at(int64_t step) const;  // step >= 1

 private:
  ScheduleConfig config_;
  double peak_, min_;
  int64_t max_steps_;
};

}  // namespace forma::train
