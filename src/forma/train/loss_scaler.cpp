#include "forma/train/loss_scaler.h"

namespace forma::train {

LossScaler::LossScaler(double initial_scale, int64_t growth_interval)
    : scale_(initial_scale), growth_interval_(growth_interval) {}

void LossScaler::restore(double scale, int64_t good_steps) {
  if (!enabled()) return;
  scale_ = scale;
  good_steps_ = good_steps;
}

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const { return enabled() ? loss * scale_ : loss; }

bool LossScaler::unscale(const std::vector<NamedParameter>& params) const {
  if (!enabled()) return true;
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (const auto& p : params) {
    const torch::Tensor& grad = p.tensor.grad();
    if (!grad.defined()) continue;
    grad.div_(scale_);
    finite = finite && grad.isfinite().all().item<bool>();
  }
  return finite;
}

void LossScaler::update(bool finite) {
  if (!enabled()) return;
  if (!finite) {
    scale_ *= 0.5;
    good_steps_ = 0;
  } else if (++good_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    good_steps_ = 0;
  }
}

}  // namespace forma::train
