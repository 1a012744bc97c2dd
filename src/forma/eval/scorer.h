// What evaluation asks of a model: the log-probability of each continuation token given everything
// before it. Tasks are written against this interface, so they are tested with hand-made scorers
// whose answers can be computed on paper, and run on a real model through ModelScorer.
#pragma once
#include <cstdint>
#include <vector>

namespace forma {
class CausalLMImpl;
}

namespace forma::eval {

class Scorer {
 public:
  virtual ~Scorer() = default;
  // log p(continuation[i] | context, continuation[:i]) for each i. context may be empty only if the
  // scorer has a start token of its own; tasks always pass at least one context token.
  virtual std::vector<double> continuation_logprobs(const std::vector<int32_t>& context,
                                                    const std::vector<int32_t>& continuation) = 0;
  // The longest context + continuation the model takes at once.
  virtual int64_t max_length() const = 0;
};

// A causal LM as a scorer (fp32 log-softmax over the logits, no gradients).
class ModelScorer : public Scorer {
 public:
  explicit ModelScorer(CausalLMImpl& model);
  std::vector<double> continuation_logprobs(const std::vector<int32_t>& context,
                                            const std::vector<int32_t>& continuation) override;
  int64_t max_length() const override;

 private:
  CausalLMImpl& model_;
};

}  // namespace forma::eval
