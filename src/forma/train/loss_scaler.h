// Dynamic loss scaling for fp16 mixed precision (PyTorch's GradScaler, same defaults): the loss is
// multiplied by a scale before backward so that small gradients survive fp16's narrow range; the
// gradients are divided by it before the optimizer sees them. A step whose gradients overflowed is
// skipped and the scale halved; after `growth_interval` good steps in a row it doubles. bf16 has
// fp32's range and needs none of this: the scaler is then off and costs nothing.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "forma/train/adamw.h"

namespace forma::train {

class LossScaler {
 public:
  LossScaler() = default;  // off
  LossScaler(double initial_scale, int64_t growth_interval);

  bool enabled() const { return scale_ > 0; }
  double scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  // Resume: the scale and the run of good steps a checkpoint recorded.
  void restore(double scale, int64_t good_steps);

  // loss * scale (the loss itself when off).
  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  // Divides every gradient by the scale; whether all of them are finite (always true when off).
  bool unscale(const std::vector<NamedParameter>& params) const;
  // After a step: halve on overflow (the step was skipped), double after growth_interval good steps.
  void update(bool finite);

 private:
  double scale_ = 0;
  int64_t growth_interval_ = 2000;
  int64_t good_steps_ = 0;
};

}  // namespace forma::train
