#include "forma/train/optimizer.h"

namespace forma::train {
namespace {

class LocalAdamW : public Optimizer {
 public:
  LocalAdamW(std::vector<NamedParameter> params, AdamWOptions options, ModelParallelSum model_parallel_sum)
      : adamw_(std::move(params), options), model_parallel_sum_(std::move(model_parallel_sum)) {}

  double step(double lr, double max_grad_norm) override {
    double norm = clip_grad_norm(adamw_.params(), max_grad_norm, model_parallel_sum_);
    adamw_.step(lr);
    return norm;
  }
  void zero_grad() override { adamw_.zero_grad(); }
  std::map<std::string, torch::Tensor> gather_state_dict() override { return adamw_.state_dict(); }
  void load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source) override {
    adamw_.load_state_dict(state, source);
  }

 private:
  AdamW adamw_;
  ModelParallelSum model_parallel_sum_;
};

}  // namespace

std::unique_ptr<Optimizer> make_local_adamw(std::vector<NamedParameter> params, AdamWOptions options,
                                            ModelParallelSum model_parallel_sum) {
  return std::make_unique<LocalAdamW>(std::move(params), options, std::move(model_parallel_sum));
}

}  // namespace forma::train
