#include "forma/infer/sequence_decoder.h"

#include <algorithm>

#include "forma/core/error.h"

namespace forma::infer {

namespace {
int64_t validated_budget(const ModelConfig& model_config, const std::vector<int32_t>& prompt,
                         const GenerationConfig& config) {
  config.validate();
  return generation_budget(model_config, prompt, config.max_new_tokens);
}
}  // namespace

SequenceDecoder::SequenceDecoder(const ModelConfig& model_config, const std::vector<int32_t>& prompt,
                                 const GenerationConfig& config, const tok::Tokenizer* tokenizer,
                                 const GenerationCallbacks& callbacks)
    : config_(config),
      callbacks_(callbacks),
      budget_(validated_budget(model_config, prompt, config)),
      sampler_(config.sampling, config.seed, model_config.vocab_size) {
  check(tokenizer || config.stop_strings.empty(), "generation: stop strings need a tokenizer");
  sampler_.observe(prompt);
  if (tokenizer) stream_.emplace(*tokenizer, config.stop_strings);
  result_.stop_reason =
      budget_ < config.max_new_tokens ? StopReason::kContextLength : StopReason::kMaxNewTokens;
}

int32_t SequenceDecoder::step(const torch::Tensor& logits) {
  check(!done_, "generation: a finished sequence was asked for another token");
  const int32_t token = sampler_.next(logits);
  result_.ids.push_back(token);
  if (callbacks_.on_token) callbacks_.on_token(token, logits);
  const auto& eos = config_.eos_ids;
  if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
    result_.stop_reason = StopReason::kEos;
    done_ = true;
    return token;
  }
  if (stream_) {
    std::string piece = stream_->push(token);
    if (!piece.empty() && callbacks_.on_text) callbacks_.on_text(piece);
    if (stream_->stopped()) {
      result_.stop_reason = StopReason::kStopString;
      done_ = true;
      return token;
    }
  }
  if (static_cast<int64_t>(result_.ids.size()) == budget_) done_ = true;
  return token;
}

GenerationResult SequenceDecoder::finish() {
  if (stream_) {
    std::string piece = stream_->finish();
    if (!piece.empty() && callbacks_.on_text) callbacks_.on_text(piece);
    result_.text = stream_->text();
  }
  done_ = true;
  return std::move(result_);
}

}  // namespace forma::infer
