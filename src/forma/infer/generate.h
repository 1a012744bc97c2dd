// Autoregressive generation for one sequence: prefill the prompt (into a KV cache), then choose one
// token at a time with the sampler until EOS, a stop string, max_new_tokens or the model's context
// length. Text is streamed through a callback as soon as it is complete UTF-8.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "forma/infer/sampling.h"
#include "forma/model/causal_lm.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

struct GenerationConfig {
  int64_t max_new_tokens = 128;           // upper bound on generated tokens (EOS included); >= 1
  SamplingConfig sampling;                // temperature 0 = greedy
  uint64_t seed = 0;                      // fixes the sampled tokens
  std::vector<std::string> stop_strings;  // text-level; the first one found is cut with all after it
  std::vector<int32_t> eos_ids;           // generating one of these stops (it is kept in ids)
  bool use_cache = true;                  // false: rerun the whole sequence for every token

  // Throws forma::Error naming the field that is out of range.
  void validate() const;
};

enum class StopReason { kEos, kStopString, kMaxNewTokens, kContextLength };
// "eos", "stop_string", "max_new_tokens", "context_length".
const char* stop_reason_name(StopReason reason);

struct GenerationResult {
  std::vector<int32_t> ids;  // generated ids only (a final EOS included, as HF returns it)
  std::string text;          // decode of the generated ids without EOS, cut before a stop string;
                             // empty without a tokenizer
  StopReason stop_reason = StopReason::kMaxNewTokens;
};

struct GenerationCallbacks {
  // Each newly complete piece of text; the pieces concatenate to GenerationResult::text.
  std::function<void(std::string_view piece)> on_text;
  // Every chosen token with the raw logits [V] (before any processing) it was chosen from.
  std::function<void(int32_t id, const torch::Tensor& logits)> on_token;
};

// How many tokens may follow `prompt`: max_new_tokens, lowered (with a warning) where the model's
// context length (max_position_embeddings: learned position tables end there) comes first.
// Errors (forma::Error): an empty prompt, ids outside the vocabulary, a prompt as long as the
// context.
int64_t generation_budget(const ModelConfig& model_config, const std::vector<int32_t>& prompt,
                          int64_t max_new_tokens);

// Evaluation mode (no dropout) for a scope; the caller's mode is restored on every exit.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(CausalLM& model) : model_(model), was_training_(model->is_training()) {
    model_->eval();
  }
  ~EvalModeGuard() { model_->train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  CausalLM& model_;
  bool was_training_;
};

// `tokenizer` may be null (no text, no stop strings). Errors (forma::Error): empty prompt, ids
// outside the model's vocabulary, a prompt as long as the model's context, invalid config.
GenerationResult generate(CausalLM& model, const std::vector<int32_t>& prompt_ids,
                          const GenerationConfig& config, const tok::Tokenizer* tokenizer = nullptr,
                          const GenerationCallbacks& callbacks = {});

}  // namespace forma::infer
