// One sequence being generated, whichever engine runs the model (generate() for one prompt,
// generate_batch() for many): it chooses each token with the sequence's own seeded Sampler,
// streams its text and applies its stop rules (EOS, stop strings, token budget), so a sequence
// stops and reports the same way in a batch as alone.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "forma/infer/generate.h"
#include "forma/infer/sampling.h"
#include "forma/infer/text_stream.h"
#include "forma/model/config.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

class SequenceDecoder {
 public:
  // Validates `config` and the prompt (generation_budget's errors). `tokenizer` may be null (no
  // text, no stop strings) and must outlive the decoder.
  SequenceDecoder(const ModelConfig& model_config, const std::vector<int32_t>& prompt,
                  const GenerationConfig& config, const tok::Tokenizer* tokenizer,
                  const GenerationCallbacks& callbacks);

  // Most tokens this sequence may generate (max_new_tokens, or fewer at the context length).
  int64_t budget() const { return budget_; }
  // Chooses the next token from the raw next-token logits [V] and records it. Not after done().
  int32_t step(const torch::Tensor& logits);
  // True once EOS, a stop string or the budget ended the sequence.
  bool done() const { return done_; }
  // Flushes the text stream; call once, at the end.
  GenerationResult finish();

 private:
  GenerationConfig config_;
  GenerationCallbacks callbacks_;
  int64_t budget_;
  Sampler sampler_;
  std::optional<TextStream> stream_;
  GenerationResult result_;
  bool done_ = false;
};

}  // namespace forma::infer
