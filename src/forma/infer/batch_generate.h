// Generation for many prompts at once. The prompts run as one batch through the model: one prefill
// forward for all of them, then one forward per step with one new token per unfinished row, each
// row with its own cache rows, sampler, seed, settings and stop rules (SequenceDecoder), so a row
// generates what the same prompt generates alone (greedy: the same tokens; sampled: the same draws
// from logits that agree to rounding).
//
// Rows of different lengths are left-padded in one shared KV cache (see model/kv_cache.h) rather
// than given ragged per-row caches: every row then appends at the same cache position, a step is a
// plain [B, 1] forward that batches every matmul, and the next-token logits of all rows sit in the
// last column. The padding is masked out and each row's positions start after its padding, so a row
// computes what it computes alone. Finished rows leave the batch (their cache rows are dropped), so
// a long row does not keep short ones' costs alive.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "forma/infer/generate.h"
#include "forma/model/causal_lm.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

struct BatchRequest {
  std::vector<int32_t> prompt_ids;
  GenerationConfig config;  // use_cache is ignored: batches always decode with the KV cache
  GenerationCallbacks callbacks;
  std::string label;  // names the request in errors, e.g. "prompts.jsonl:3"; default "request N"
};

struct BatchTimings {
  double prefill_seconds = 0;   // the prompt forward(s)
  double decode_seconds = 0;    // everything after: sampling and the one-token forwards
  int64_t prompt_tokens = 0;    // real prompt tokens (padding not counted)
  int64_t padded_tokens = 0;    // prompt tokens as computed (rows x longest prompt, summed)
  int64_t generated_tokens = 0;
  int64_t decode_forwards = 0;  // one-token forward calls
};

// Runs `requests` as one batch; results in request order. `tokenizer` may be null (no text, no
// stop strings). `timings`, when given, receives the time spent (added to what it holds).
// Errors (forma::Error) name the request's label: an empty prompt, ids outside the vocabulary, a
// prompt as long as the model's context, invalid settings.
std::vector<GenerationResult> generate_batch(CausalLM& model, const std::vector<BatchRequest>& requests,
                                             const tok::Tokenizer* tokenizer = nullptr,
                                             BatchTimings* timings = nullptr);

// Any number of requests, as batches of at most `max_batch` rows; prompts of similar length share a
// batch (less padding). Results in request order.
std::vector<GenerationResult> generate_batches(CausalLM& model, const std::vector<BatchRequest>& requests,
                                               int64_t max_batch, const tok::Tokenizer* tokenizer = nullptr,
                                               BatchTimings* timings = nullptr);

}  // namespace forma::infer
