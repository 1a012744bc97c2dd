// What the trainer calls once the backward passes of a step are done: synchronise the gradients
// (nothing to do in one process), clip them by their global norm, and apply AdamW, wherever the
// optimizer state lives (whole on every rank, or sharded: parallel/zero_optimizer.h). The state is
// exchanged in one layout-independent form, AdamW::state_dict()'s (whole tensors by parameter name),
// so that a checkpoint resumes under any number of data-parallel ranks.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "forma/train/adamw.h"

namespace forma::train {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // After backward: the global gradient's L2 norm before clipping (`max_grad_norm` <= 0: no
  // clipping), then one AdamW update with learning rate `lr`. Collective under data parallelism.
  virtual double step(double lr, double max_grad_norm) = 0;
  virtual void zero_grad() = 0;

  // The whole state as AdamW::state_dict() has it. Collective when the state is sharded: every rank
  // must call it; the complete map is returned on the group's rank 0 (other ranks get an empty map).
  virtual std::map<std::string, torch::Tensor> gather_state_dict() = 0;
  // Takes this rank's part of a state_dict() map; throws naming `source` when it does not fit.
  virtual void load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source) = 0;
};

// clip_grad_norm and AdamW on this rank's parameters; `model_parallel_sum` as clip_grad_norm's
// (empty in one process).
std::unique_ptr<Optimizer> make_local_adamw(std::vector<NamedParameter> params, AdamWOptions options,
                                            ModelParallelSum model_parallel_sum = {});

}  // namespace forma::train
