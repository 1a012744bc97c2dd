#include "forma/infer/generate.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/infer/sequence_decoder.h"

namespace forma::infer {

void GenerationConfig::validate() const {
  check(max_new_tokens >= 1, "generation: max_new_tokens must be >= 1, got {}", max_new_tokens);
  sampling.validate();
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    check(!stop_strings[i].empty(), "generation: stop string {} is empty", i + 1);
  }
}

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kEos: return "eos";
    case StopReason::kStopString: return "stop_string";
    case StopReason::kMaxNewTokens: return "max_new_tokens";
    case StopReason::kContextLength: return "context_length";
  }
  return "unknown";
}

int64_t generation_budget(const ModelConfig& model_config, const std::vector<int32_t>& prompt,
                          int64_t max_new_tokens) {
  check(!prompt.empty(), "generation: the prompt has no tokens");
  for (size_t i = 0; i < prompt.size(); ++i) {
    check(prompt[i] >= 0 && prompt[i] < model_config.vocab_size,
          "generation: prompt token {} (position {}) is outside the model's vocabulary [0, {})",
          prompt[i], i, model_config.vocab_size);
  }
  const auto prompt_len = static_cast<int64_t>(prompt.size());
  const int64_t context = model_config.max_position_embeddings;
  if (context <= 0) return max_new_tokens;
  check(prompt_len < context,
        "generation: the prompt has {} tokens, the model's context (max_position_embeddings) is {}",
        prompt_len, context);
  if (prompt_len + max_new_tokens > context) {
    log::warn("generation: stopping at the model's context length {} (prompt {} + {} new tokens)",
              context, prompt_len, context - prompt_len);
  }
  return std::min(max_new_tokens, context - prompt_len);
}

namespace {

torch::Tensor as_batch_of_one(const std::vector<int32_t>& ids, torch::Device device) {
  auto cpu = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong);
  return cpu.to(device).unsqueeze(0);  // [1, T]
}

// Next-token logits [V] of a batch of one: the output projection of the last position only (the
// [T, V] logits of a whole prompt are never computed; `forma logits` asks forward() for them).
torch::Tensor next_logits(CausalLM& model, const torch::Tensor& ids, KVCache* cache) {
  torch::Tensor hidden = model->transformer()->forward(ids, cache);  // [1, T, C]
  return model->output_logits(hidden.select(1, -1)).select(0, 0);    // [V]
}

}  // namespace

GenerationResult generate(CausalLM& model, const std::vector<int32_t>& prompt_ids,
                          const GenerationConfig& config, const tok::Tokenizer* tokenizer,
                          const GenerationCallbacks& callbacks) {
  const ModelConfig& model_config = model->config();
  SequenceDecoder decoder(model_config, prompt_ids, config, tokenizer, callbacks);
  const auto prompt_len = static_cast<int64_t>(prompt_ids.size());

  torch::NoGradGuard no_grad;
  EvalModeGuard eval_guard(model);
  const torch::Device device = model->parameters().front().device();
  std::optional<KVCache> cache;
  if (config.use_cache) cache.emplace(model_config, prompt_len + decoder.budget());

  std::vector<int32_t> sequence = prompt_ids;  // prompt + generated, for the no-cache path
  const auto start = std::chrono::steady_clock::now();
  // Prefill: the whole prompt in one forward; its last position predicts the first new token.
  torch::Tensor logits = next_logits(model, as_batch_of_one(prompt_ids, device), cache ? &*cache : nullptr);
  const auto prefilled = std::chrono::steady_clock::now();
  while (true) {
    const int32_t token = decoder.step(logits);
    if (decoder.done()) break;  // no forward for a token nobody will read
    sequence.push_back(token);
    logits = cache ? next_logits(model, as_batch_of_one({token}, device), &*cache)
                   : next_logits(model, as_batch_of_one(sequence, device), nullptr);
  }
  GenerationResult result = decoder.finish();

  const auto end = std::chrono::steady_clock::now();
  const double prefill_s = std::chrono::duration<double>(prefilled - start).count();
  const double decode_s = std::chrono::duration<double>(end - prefilled).count();
  log::debug("generation: prompt {} tokens in {:.3f} s, {} new tokens in {:.3f} s ({:.1f} tokens/s), "
             "stopped by {}",
             prompt_len, prefill_s, result.ids.size(), decode_s,
             decode_s > 0 ? result.ids.size() / decode_s : 0.0, stop_reason_name(result.stop_reason));
  return result;
}

}  // namespace forma::infer
