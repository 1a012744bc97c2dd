// Mixed precision as PyTorch's torch.autocast does it: inside a scope, matmuls (linear, bmm,
// attention) cast their inputs to a low dtype (bf16, or fp16 on CUDA) and compute there, while ops
// that need range (norms' statistics, softmax, losses) run in fp32; parameters keep their fp32 dtype,
// so the optimizer updates fp32 master weights. Autocast is thread-local state: a recomputation in the
// backward pass (recompute.h) re-enters the state its forward ran under.
#pragma once
#include <torch/torch.h>

namespace forma {

struct AutocastState {
  bool enabled = false;
  c10::DeviceType device_type = c10::DeviceType::CPU;
  c10::ScalarType dtype = c10::ScalarType::BFloat16;
};

// This thread's autocast state for `device_type`.
AutocastState current_autocast(c10::DeviceType device_type);

// Sets `state` for its device type while alive and restores the previous one after; the cache of
// weights cast to the low dtype is dropped when the outermost scope ends (as torch.autocast does).
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
};

}  // namespace forma
