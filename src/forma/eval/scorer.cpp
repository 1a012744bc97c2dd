#include "forma/eval/scorer.h"

#include "forma/core/error.h"
#include "forma/model/causal_lm.h"

namespace forma::eval {

ModelScorer::ModelScorer(CausalLMImpl& model) : model_(model) {}

int64_t ModelScorer::max_length() const { return model_.config().max_position_embeddings; }

std::vector<double> ModelScorer::continuation_logprobs(const std::vector<int32_t>& context,
                                                       const std::vector<int32_t>& continuation) {
  check(!context.empty(), "scoring needs at least one context token");
  if (continuation.empty()) return {};
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids(context.begin(), context.end());
  ids.insert(ids.end(), continuation.begin(), continuation.end());
  ids.pop_back();  // the last token is only predicted, never fed
  const torch::Device device = model_.parameters().front().device();
  auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(device);             // [1, T]
  auto logits = model_.forward(input).squeeze(0).to(torch::kCPU, torch::kFloat32);  // [T, V]
  auto n = static_cast<int64_t>(continuation.size());
  auto logp = torch::log_softmax(logits.narrow(0, logits.size(0) - n, n), -1);  // [n, V]
  auto target = torch::tensor(std::vector<int64_t>(continuation.begin(), continuation.end()), torch::kInt64);
  auto picked = logp.gather(1, target.unsqueeze(1)).squeeze(1).to(torch::kFloat64);  // [n]
  auto* p = picked.data_ptr<double>();
  return std::vector<double>(p, p + n);
}

}  // namespace forma::eval
