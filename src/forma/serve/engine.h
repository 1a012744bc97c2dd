// The serving engine: continuous batching over a paged KV cache. Requests join the running batch
// at any step and leave it when they finish; a long prompt is prefilled in chunks so that it does
// not stall the sequences already decoding; the KV cache is a pool of fixed-size blocks with a
// block table per sequence (freed on finish or cancel; a sequence is preempted and later
// recomputed when the pool is full); requests that share a prompt prefix share its full blocks.
//
// Threading: submit(), cancel(), begin_shutdown() and stats() may be called from any thread.
// step() runs one scheduling step (admit, one forward over the running batch, sample, emit events)
// and must be called from one thread at a time: run() loops over it on the calling thread, which is
// what the server does on its engine thread; tests call step() directly for determinism. Callbacks
// (on_token, on_finish) run on the thread that calls step(), and must not call back into the engine
// except cancel().
//
// A request's outputs do not depend on what else is in the batch: greedy fp32 decoding gives the
// tokens `forma generate` gives for the same prompt, and a sampled request with a seed draws the
// same tokens alone or in a busy batch (each request owns its sampler, infer::SequenceDecoder).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "forma/infer/generate.h"
#include "forma/model/causal_lm.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::serve {

struct EngineOptions {
  int64_t max_batch = 8;          // most sequences in one forward (running batch size)
  int64_t kv_cache_tokens = 0;    // KV-cache capacity in tokens over all sequences; 0 = max_batch x context
  int64_t block_size = 16;        // tokens per KV block
  int64_t prefill_chunk = 256;    // most prompt tokens of one sequence computed in one step
  int64_t max_queue = 256;        // waiting requests beyond this make submit() throw QueueFull
  bool prefix_caching = true;     // share full blocks of identical prompt prefixes
};

// One alternative at a position: a token and its log-probability under the raw model
// distribution (log_softmax of the logits, before temperature or any filter).
struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
};

// One position's log-probabilities: the token at the position and the `top_logprobs` most likely
// alternatives (most likely first).
struct PositionLogprobs {
  TokenLogprob token;
  std::vector<TokenLogprob> top;
};

struct EngineRequest {
  std::vector<int32_t> prompt_ids;
  infer::GenerationConfig config;  // max_new_tokens may be 0 with echo_logprobs (score only)
  bool logprobs = false;           // report PositionLogprobs for every generated token
  int64_t top_logprobs = 0;        // alternatives per position when logprobs or echo_logprobs
  bool echo_logprobs = false;      // report PositionLogprobs for prompt tokens 1.. (token 0 has none)
  std::string label;               // names the request in errors and logs
};

struct TokenEvent {
  int32_t id = 0;
  std::string text;                         // newly complete UTF-8 text (may be empty)
  std::optional<PositionLogprobs> logprobs; // when the request asked for logprobs
};

enum class FinishReason { kStop, kLength, kCancelled, kError };

struct FinishedEvent {
  infer::GenerationResult result;              // ids, text, stop_reason as generate() reports them
  FinishReason reason = FinishReason::kStop;   // kStop: EOS or stop string; kLength: token budget
  std::vector<PositionLogprobs> prompt_logprobs;  // with echo_logprobs: prompt positions 1..
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens whose KV came from the prefix cache
  std::string error;                 // kError only
};

struct RequestCallbacks {
  std::function<void(const TokenEvent&)> on_token;      // each generated token, in order
  std::function<void(const FinishedEvent&)> on_finish;  // exactly once, last
};

struct EngineStats {
  int64_t waiting = 0;       // submitted, not yet admitted (includes preempted)
  int64_t running = 0;       // in the running batch
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;     // held by running sequences
  int64_t kv_blocks_cached = 0;   // unused but holding a cached prefix (evicted when needed)
  int64_t preemptions = 0;   // since start
  int64_t prefix_cache_hit_tokens = 0;  // since start
};

// Thrown by submit() when max_queue requests are waiting (the server answers 429).
struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Engine {
 public:
  // `model` and `tokenizer` (may be null: no text, no stop strings) must outlive the engine.
  Engine(CausalLM& model, const tok::Tokenizer* tokenizer, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates the request (forma::Error naming request.label: empty prompt, ids outside the
  // vocabulary, prompt too long for the context or for the whole KV cache, invalid settings) and
  // queues it. Returns its id. Throws QueueFull when the queue is full, forma::Error after
  // begin_shutdown().
  uint64_t submit(EngineRequest request, RequestCallbacks callbacks);
  // Cancels a waiting or running request: its blocks are freed at the next step and on_finish
  // reports kCancelled. Unknown or finished ids are ignored.
  void cancel(uint64_t id);
  // One scheduling step. Returns false when there was nothing to do.
  bool step();
  // Calls step() until begin_shutdown() and no request is left; sleeps while idle.
  void run();
  // Stops accepting; requests still running after `grace_seconds` are cancelled.
  void begin_shutdown(double grace_seconds);
  EngineStats stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace forma::serve
