// AdamW with exactly torch.optim.AdamW's math (decoupled weight decay, bias correction; the
// non-amsgrad path), written out here so that its state is keyed by parameter name: checkpoints
// store it by name, and ZeRO-style sharding later only has to split the name list.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace forma::train {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

struct NamedParameter {
  std::string name;
  torch::Tensor tensor;
  bool decay = true;  // false for 1-D parameters (norms, biases), as in nanoGPT and Megatron
  // This tensor's share of the global gradient norm: 1 / (the number of ranks holding the same
  // piece of the model), so that a norm summed over the model-parallel ranks counts each element
  // of the full model once (tensor parallel: ShardSpec::copies). 1 without model parallelism.
  double norm_share = 1.0;
};

// Sums a per-rank partial sum of squared gradient elements over the ranks that hold the other
// pieces of the model (the tensor-parallel group). Empty: the rank holds the whole model.
using ModelParallelSum = std::function<double(double)>;

// Parameters of `module` that require grad, in registration order; decay = (dim >= 2).
std::vector<NamedParameter> decay_groups(const torch::nn::Module& module);

// One AdamW update of `param` in place, the math of torch.optim.AdamW's single-tensor path, with
// `step` the update's number (1 for the first). Elementwise: applied to a slice of a parameter and
// its state it gives the same numbers as on the whole (ZeRO's sharded optimizer relies on this).
void adamw_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq,
                  int64_t step, double lr, double weight_decay, const AdamWOptions& options);

class AdamW {
 public:
  AdamW(std::vector<NamedParameter> params, AdamWOptions options);

  // One update with learning rate `lr` (the schedule's value for this step). Parameters without a
  // gradient are skipped, as torch does.
  void step(double lr);
  void zero_grad();

  const std::vector<NamedParameter>& params() const { return params_; }
  const AdamWOptions& options() const { return options_; }

  // State as tensors by name: "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.step" (int64 [1]).
  std::map<std::string, torch::Tensor> state_dict() const;
  // Restores state written by state_dict(); throws forma::Error naming `source` and the tensor when
  // a parameter's state is missing or has the wrong shape.
  void load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  struct State {
    int64_t step = 0;
    torch::Tensor exp_avg, exp_avg_sq;
  };
  std::vector<NamedParameter> params_;
  std::map<std::string, State> state_;
  AdamWOptions options_;
};

// Scales all gradients so that their global L2 norm is at most `max_norm` (as
// torch.nn.utils.clip_grad_norm_ does, with its 1e-6 guard) and returns the norm before clipping.
// max_norm <= 0 only measures.
// With `model_parallel_sum`, the norm is that of the whole model whose pieces the ranks hold
// (each tensor's squares weighted by its norm_share, summed in fp64 over the ranks).
double clip_grad_norm(const std::vector<NamedParameter>& params, double max_norm,
                      const ModelParallelSum& model_parallel_sum = {});

// Scales every gradient by max_norm / (norm + 1e-6) when that is below 1 (clip_grad_norm's rule).
void scale_gradients_to_norm(const std::vector<NamedParameter>& params, double norm, double max_norm);

}  // namespace forma::train
