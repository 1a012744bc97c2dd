// The engine's scheduler (engine.h). Each step:
//   1. takes newly submitted requests and cancellations (the only state shared with other threads,
//      under the mutex) and cancels everything once a shutdown's grace period is over;
//   2. admits waiting requests in FIFO order while the running batch has room and the block pool
//      can hold the request's tokens (after taking its cached prefix blocks);
//   3. plans the forwards: every running sequence with exactly one uncomputed token (decoding)
//      computes it; sequences with more (prefilling a prompt, or recomputing after preemption) get
//      chunks of at most prefill_chunk tokens in all, so a long prompt advances a chunk per step
//      while the decoding batch keeps moving. Sequences computing the same number of tokens share
//      one forward (the decoding batch is the [B, 1] one). Blocks for the new positions are
//      allocated here; when none is left (cached prefix blocks are evicted first), the most
//      recently admitted running sequence is preempted;
//   4. runs the forwards over KV gathered from the blocks (paged_kv.h), writes the new KV back,
//      registers newly full blocks for prefix reuse, and lets each sequence whose tokens are all
//      computed choose its next token with its own SequenceDecoder (so it stops and reports as
//      `forma generate` does), emitting events and finishing sequences.
#include "forma/serve/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/infer/sequence_decoder.h"
#include "forma/serve/block_pool.h"
#include "forma/serve/paged_kv.h"

namespace forma::serve {

// Named, not anonymous: Engine::State (external linkage) holds these.
namespace engine_detail {

using EngineClock = std::chrono::steady_clock;

struct Sequence {
  uint64_t id = 0;
  EngineRequest request;
  RequestCallbacks callbacks;
  std::string label;
  std::unique_ptr<infer::SequenceDecoder> decoder;  // null when scoring only (max_new_tokens 0)
  std::optional<infer::GenerationResult> result;    // once the decoder is finished
  std::vector<int32_t> tokens;                      // the prompt, then the generated ids
  int64_t prompt_tokens = 0;
  int64_t computed = 0;              // leading positions whose KV is in `blocks`
  std::vector<int32_t> blocks;       // block table
  int64_t registered = 0;            // leading blocks already offered to the prefix cache
  std::vector<uint64_t> keys;        // prefix-cache keys of the leading full blocks (by tokens only)
  int64_t echo_next = 1;             // next prompt position whose logprob is owed (echo_logprobs)
  std::vector<PositionLogprobs> prompt_logprobs;
  std::string pending_text;          // text completed by the latest token
  int64_t cached_prompt_tokens = 0;
  bool admitted_before = false;
  bool running = false;

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - computed; }
  bool owes_echo() const { return request.echo_logprobs && echo_next < prompt_tokens; }
};

PositionLogprobs position_logprobs(const torch::Tensor& logits, int32_t id, int64_t top) {
  torch::Tensor lp = torch::log_softmax(logits.to(torch::kFloat), 0);
  PositionLogprobs out;
  out.token = {id, lp[id].item<float>()};
  if (top > 0) {
    auto [values, ids] = lp.topk(std::min<int64_t>(top, lp.size(0)));
    for (int64_t i = 0; i < values.size(0); ++i) {
      out.top.push_back({static_cast<int32_t>(ids[i].item<int64_t>()), values[i].item<float>()});
    }
  }
  return out;
}

FinishReason reason_of(infer::StopReason stop) {
  return stop == infer::StopReason::kEos || stop == infer::StopReason::kStopString ? FinishReason::kStop
                                                                                    : FinishReason::kLength;
}

}  // namespace engine_detail

using namespace engine_detail;

struct Engine::State {
  CausalLM& model;
  const tok::Tokenizer* tokenizer;
  EngineOptions options;
  torch::Device device;
  BlockPool pool;
  PagedKV kv;

  // Shared with other threads (under `mutex`).
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::unique_ptr<Sequence>> incoming;
  std::unordered_set<uint64_t> cancels;
  bool shutting_down = false;
  EngineClock::time_point deadline;
  uint64_t next_id = 1;
  EngineStats snapshot;

  // Owned by the stepping thread.
  std::unordered_map<uint64_t, std::unique_ptr<Sequence>> live;
  std::deque<Sequence*> waiting;
  std::vector<Sequence*> running;  // in admission order
  int64_t preemptions = 0, prefix_hits = 0;

  State(CausalLM& m, const tok::Tokenizer* t, const EngineOptions& o, int64_t num_blocks)
      : model(m),
        tokenizer(t),
        options(o),
        device(m->parameters().front().device()),
        pool(num_blocks, o.block_size),
        kv(m->config(), num_blocks, o.block_size, m->dtype(), device) {}

  int64_t block_size() const { return options.block_size; }

  uint64_t key_of(Sequence& s, int64_t block) {
    while (static_cast<int64_t>(s.keys.size()) <= block) {
      const auto i = static_cast<int64_t>(s.keys.size());
      s.keys.push_back(BlockPool::block_key(i ? s.keys[i - 1] : 0, s.tokens.data() + i * block_size(), block_size()));
    }
    return s.keys[block];
  }

  void release_blocks(Sequence& s) {
    // Last block first: the cache evicts least recently released first, so a prefix's tail goes
    // before its head (which more requests are likely to share).
    for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) pool.release(*it);
    s.blocks.clear();
    s.computed = 0;
    s.registered = 0;
  }

  void emit_finish(Sequence& s, FinishReason reason, const std::string& error = {}) {
    if (!s.result) s.result = s.decoder ? s.decoder->finish() : infer::GenerationResult{};
    release_blocks(s);
    if (s.running) {
      running.erase(std::find(running.begin(), running.end(), &s));
      s.running = false;
    } else {
      auto it = std::find(waiting.begin(), waiting.end(), &s);
      if (it != waiting.end()) waiting.erase(it);
    }
    FinishedEvent event;
    event.result = std::move(*s.result);
    event.reason = reason;
    event.prompt_logprobs = std::move(s.prompt_logprobs);
    event.prompt_tokens = s.prompt_tokens;
    event.cached_prompt_tokens = s.cached_prompt_tokens;
    event.error = error;
    std::unique_ptr<Sequence> owned = std::move(live.at(s.id));
    live.erase(s.id);
    if (owned->callbacks.on_finish) {
      try {
        owned->callbacks.on_finish(event);
      } catch (const std::exception& e) {
        log::warn("engine: {}: on_finish failed: {}", owned->label, e.what());
      }
    }
  }

  // Takes the sequence's longest chain of cached prefix blocks and checks that the pool can hold
  // the rest of its tokens; false (nothing taken) when it cannot yet.
  bool admit(Sequence& s) {
    const auto n = static_cast<int64_t>(s.tokens.size());
    // The last token is always computed (its logits choose the next one), and so is every
    // position whose logits an echo still owes.
    const int64_t must_compute_from = s.owes_echo() ? std::min(n - 1, s.echo_next - 1) : n - 1;
    std::vector<int32_t> hits;
    int64_t hits_cached = 0;
    if (options.prefix_caching) {
      for (int64_t b = 0; b < must_compute_from / block_size(); ++b) {
        auto block = pool.lookup(key_of(s, b), b ? key_of(s, b - 1) : 0, s.tokens.data() + b * block_size());
        if (!block) break;
        hits.push_back(*block);
        hits_cached += pool.is_cached(*block) ? 1 : 0;
      }
    }
    const int64_t needed = (n + block_size() - 1) / block_size() - static_cast<int64_t>(hits.size());
    if (needed > pool.available_blocks() - hits_cached) return false;
    for (int32_t block : hits) pool.acquire(block);
    s.blocks = hits;
    s.computed = static_cast<int64_t>(hits.size()) * block_size();
    s.registered = static_cast<int64_t>(hits.size());
    prefix_hits += s.computed;
    if (!s.admitted_before) s.cached_prompt_tokens = std::min(s.computed, s.prompt_tokens);
    s.admitted_before = true;
    s.running = true;
    running.push_back(&s);
    return true;
  }

  void admit_waiting() {
    while (!waiting.empty() && static_cast<int64_t>(running.size()) < options.max_batch) {
      Sequence& s = *waiting.front();
      if (!admit(s)) {
        // Nothing running will free blocks for it: it can never fit (only a sequence that grew
        // to the whole cache gets here). Ends as at a context length.
        if (running.empty()) {
          log::warn("engine: {}: {} tokens do not fit the KV cache of {} tokens", s.label, s.tokens.size(),
                    pool.num_blocks() * block_size());
          waiting.pop_front();
          finish_length(s);
          continue;
        }
        return;
      }
      waiting.pop_front();
    }
  }

  void finish_length(Sequence& s) {
    if (!s.result && s.decoder) {
      s.result = s.decoder->finish();
      s.result->stop_reason = infer::StopReason::kContextLength;
    }
    emit_finish(s, FinishReason::kLength);
  }

  void preempt(Sequence& s) {
    release_blocks(s);
    running.erase(std::find(running.begin(), running.end(), &s));
    s.running = false;
    waiting.push_front(&s);  // first to be admitted again; its decoder (sampler, text) is kept
    ++preemptions;
    log::debug("engine: {} preempted ({} tokens to recompute)", s.label, s.tokens.size());
  }

  // Blocks for `s`'s first `positions` positions, preempting the most recently admitted running
  // sequences as needed. False when `s` itself had to give way (or, alone, cannot grow: then it
  // is finished as at its context length).
  bool make_room(Sequence& s, int64_t positions) {
    while (static_cast<int64_t>(s.blocks.size()) * block_size() < positions) {
      if (auto block = pool.allocate()) {
        s.blocks.push_back(*block);
        continue;
      }
      Sequence* victim = running.back();
      if (victim == &s && running.size() == 1) {
        log::warn("engine: {}: the KV cache of {} tokens is full", s.label, pool.num_blocks() * block_size());
        finish_length(s);
        return false;
      }
      preempt(*victim);
      if (victim == &s) return false;
    }
    return true;
  }

  void register_full_blocks(Sequence& s) {
    if (!options.prefix_caching) return;
    for (; s.registered < s.computed / block_size(); ++s.registered) {
      const int64_t b = s.registered;
      pool.register_full(s.blocks[b], key_of(s, b), b ? key_of(s, b - 1) : 0, s.tokens.data() + b * block_size());
    }
  }

  void emit_token(Sequence& s, const TokenEvent& event) {
    if (!s.callbacks.on_token) return;
    try {
      s.callbacks.on_token(event);
    } catch (const std::exception& e) {
      log::warn("engine: {}: on_token failed: {}", s.label, e.what());
    }
  }

  // `logits` [T, V] (CPU) of positions first..first+T-1 just computed for `s` (or only the last
  // row when no echo is owed). Records owed echo logprobs and, once every token is computed,
  // chooses the next token.
  void absorb(Sequence& s, int64_t first, const torch::Tensor& logits) {
    const int64_t count = logits.size(0);
    for (int64_t r = 0; r < count && s.owes_echo(); ++r) {
      const int64_t p = first + r;  // logits at p score the token at p + 1
      if (p + 1 != s.echo_next) continue;
      s.prompt_logprobs.push_back(position_logprobs(logits[r], s.tokens[p + 1], s.request.top_logprobs));
      ++s.echo_next;
    }
    if (s.pending() > 0) return;
    if (!s.decoder) {  // scoring only
      emit_finish(s, FinishReason::kLength);
      return;
    }
    const torch::Tensor last = logits[count - 1];
    s.pending_text.clear();
    const int32_t token = s.decoder->step(last);
    s.tokens.push_back(token);
    TokenEvent event;
    event.id = token;
    if (s.request.logprobs) event.logprobs = position_logprobs(last, token, s.request.top_logprobs);
    // The final flush of the text stream belongs to the last token's event.
    if (s.decoder->done()) s.result = s.decoder->finish();
    event.text = std::move(s.pending_text);
    s.pending_text.clear();
    emit_token(s, event);
    if (s.result) emit_finish(s, reason_of(s.result->stop_reason));
  }

  torch::Tensor ids_tensor(const std::vector<int64_t>& ids, int64_t rows) const {
    return torch::tensor(ids, torch::kLong).to(device).view({rows, -1});
  }

  void fail_all(const std::vector<Sequence*>& seqs, const std::exception& e) {
    for (Sequence* s : seqs) {
      if (s->running) emit_finish(*s, FinishReason::kError, e.what());
    }
  }

  // One forward for sequences that each compute `count` more tokens (the decoding batch is the
  // group with count 1; prefill chunks of equal length share one too). Rows may hold different
  // numbers of cached positions: the gathered cache left-pads them.
  void forward_group(const std::vector<Sequence*>& group, int64_t count) {
    std::vector<PagedRow> rows;
    std::vector<int64_t> ids;
    bool echo = false;
    for (Sequence* s : group) {
      rows.push_back({&s->blocks, s->computed});
      ids.insert(ids.end(), s->tokens.begin() + s->computed, s->tokens.begin() + s->computed + count);
      echo = echo || s->owes_echo();
    }
    torch::Tensor logits;
    try {
      KVCache cache = kv.gather(rows, count);
      torch::Tensor hidden =
          model->transformer()->forward(ids_tensor(ids, static_cast<int64_t>(group.size())), &cache);  // [B, T, C]
      // Every position's logits only while an echo is owed; else each row's last.
      if (!echo) hidden = hidden.narrow(1, count - 1, 1);
      logits = model->output_logits(hidden).to(torch::kCPU);  // [B, T or 1, V]
      kv.scatter(cache, rows, count);
    } catch (const std::exception& e) {
      fail_all(group, e);
      return;
    }
    for (size_t r = 0; r < group.size(); ++r) {
      Sequence& s = *group[r];
      const int64_t first = s.computed;
      s.computed += count;
      register_full_blocks(s);
      absorb(s, first + count - logits.size(1), logits[static_cast<int64_t>(r)]);
    }
  }

  // Steps 1 (the stepping thread's side) and the shutdown deadline.
  bool take_shared() {
    std::deque<std::unique_ptr<Sequence>> arrived;
    std::unordered_set<uint64_t> cancelled;
    bool expired;
    {
      std::lock_guard<std::mutex> lock(mutex);
      arrived.swap(incoming);
      cancelled.swap(cancels);
      // The arrivals leave `incoming` now but reach publish_stats() only at the end of the step:
      // count them as waiting at once, or submit() sees a queue emptier than it is (a request
      // beyond max_queue would be accepted while the step runs).
      snapshot.waiting = static_cast<int64_t>(waiting.size() + arrived.size());
      expired = shutting_down && EngineClock::now() >= deadline;
    }
    bool changed = !arrived.empty();
    for (auto& s : arrived) {
      waiting.push_back(s.get());
      live.emplace(s->id, std::move(s));
    }
    if (expired) {
      for (auto& [id, s] : live) cancelled.insert(id);
    }
    for (uint64_t id : cancelled) {
      auto it = live.find(id);
      if (it == live.end()) continue;
      emit_finish(*it->second, FinishReason::kCancelled);
      changed = true;
    }
    return changed;
  }

  void publish_stats() {
    std::lock_guard<std::mutex> lock(mutex);
    snapshot.waiting = static_cast<int64_t>(waiting.size());
    snapshot.running = static_cast<int64_t>(running.size());
    snapshot.kv_blocks_total = pool.num_blocks();
    snapshot.kv_blocks_used = pool.used_blocks();
    snapshot.kv_blocks_cached = pool.cached_blocks();
    snapshot.preemptions = preemptions;
    snapshot.prefix_cache_hit_tokens = prefix_hits;
  }

  bool step() {
    torch::NoGradGuard no_grad;
    infer::EvalModeGuard eval_guard(model);
    bool worked = take_shared();
    admit_waiting();

    std::vector<Sequence*> decoding, prefilling;
    for (Sequence* s : running) (s->pending() == 1 ? decoding : prefilling).push_back(s);
    // Forward groups by new-token count; decoding sequences first, so that when blocks run out
    // the prefills (admitted later) are the ones preempted.
    std::map<int64_t, std::vector<Sequence*>> groups;
    for (Sequence* s : decoding) {
      if (s->running && make_room(*s, s->computed + 1)) groups[1].push_back(s);
    }
    int64_t budget = options.prefill_chunk;
    for (Sequence* s : prefilling) {
      if (budget == 0) break;
      if (!s->running) continue;
      const int64_t count = std::min(s->pending(), budget);
      if (!make_room(*s, s->computed + count)) continue;
      groups[count].push_back(s);
      budget -= count;
    }
    bool forwards = false;
    for (auto& [count, group] : groups) {
      // A later make_room may have preempted a sequence planned earlier.
      std::erase_if(group, [](Sequence* s) { return !s->running; });
      if (group.empty()) continue;
      forward_group(group, count);
      forwards = true;
    }
    worked = worked || forwards || !running.empty();
    publish_stats();
    return worked;
  }
};

Engine::Engine(CausalLM& model, const tok::Tokenizer* tokenizer, const EngineOptions& options) {
  check(options.max_batch >= 1, "engine: max_batch must be >= 1, got {}", options.max_batch);
  check(options.block_size >= 1, "engine: block_size must be >= 1, got {}", options.block_size);
  check(options.prefill_chunk >= 1, "engine: prefill_chunk must be >= 1, got {}", options.prefill_chunk);
  check(options.max_queue >= 1, "engine: max_queue must be >= 1, got {}", options.max_queue);
  check(options.kv_cache_tokens >= 0, "engine: kv_cache_tokens must be >= 0, got {}", options.kv_cache_tokens);
  const int64_t tokens =
      options.kv_cache_tokens > 0 ? options.kv_cache_tokens : options.max_batch * model->config().max_position_embeddings;
  const int64_t num_blocks = (tokens + options.block_size - 1) / options.block_size;
  state_ = std::make_unique<State>(model, tokenizer, options, num_blocks);
  state_->publish_stats();
}

Engine::~Engine() = default;

uint64_t Engine::submit(EngineRequest request, RequestCallbacks callbacks) {
  State& st = *state_;
  auto s = std::make_unique<Sequence>();
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    s->id = st.next_id++;
  }
  s->label = request.label.empty() ? fmt::format("request {}", s->id) : request.label;
  const ModelConfig& config = st.model->config();
  const auto n = static_cast<int64_t>(request.prompt_ids.size());
  try {
    check(request.top_logprobs >= 0 && request.top_logprobs <= config.vocab_size,
          "top_logprobs must be in 0..{}, got {}", config.vocab_size, request.top_logprobs);
    if (request.config.max_new_tokens == 0) {
      check(request.echo_logprobs, "max_new_tokens 0 needs echo_logprobs (scoring only)");
      check(n > 0, "the prompt has no tokens");
      for (int32_t id : request.prompt_ids) {
        check(id >= 0 && id < config.vocab_size, "prompt id {} is outside the vocabulary (0..{})", id,
              config.vocab_size - 1);
      }
      check(n <= config.max_position_embeddings, "the prompt of {} tokens exceeds the model's context of {}", n,
            config.max_position_embeddings);
      infer::GenerationConfig checked = request.config;
      checked.max_new_tokens = 1;
      checked.validate();
    } else {
      infer::GenerationCallbacks hooks;
      Sequence* raw = s.get();
      hooks.on_text = [raw](std::string_view piece) { raw->pending_text += piece; };
      s->decoder = std::make_unique<infer::SequenceDecoder>(config, request.prompt_ids, request.config,
                                                            st.tokenizer, hooks);
    }
    const int64_t capacity = st.pool.num_blocks() * st.block_size();
    check(n <= capacity, "the prompt of {} tokens does not fit the KV cache of {} tokens", n, capacity);
  } catch (const Error& e) {
    fail("{}: {}", s->label, e.what());
  }
  s->tokens = request.prompt_ids;
  s->prompt_tokens = n;
  s->request = std::move(request);
  s->callbacks = std::move(callbacks);
  const uint64_t id = s->id;
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    check(!st.shutting_down, "{}: the engine is shutting down", s->label);
    if (st.snapshot.waiting + static_cast<int64_t>(st.incoming.size()) >= st.options.max_queue) {
      throw QueueFull(fmt::format("{}: {} requests are waiting", s->label, st.options.max_queue));
    }
    st.incoming.push_back(std::move(s));
  }
  st.wake.notify_all();
  return id;
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->cancels.insert(id);
  }
  state_->wake.notify_all();
}

bool Engine::step() { return state_->step(); }

void Engine::run() {
  State& st = *state_;
  while (true) {
    if (st.step()) continue;
    // Idle: nothing waiting or running on this thread's side.
    std::unique_lock<std::mutex> lock(st.mutex);
    if (!st.incoming.empty() || !st.cancels.empty()) continue;
    if (st.shutting_down) return;
    st.wake.wait(lock, [&] { return !st.incoming.empty() || !st.cancels.empty() || st.shutting_down; });
  }
}

void Engine::begin_shutdown(double grace_seconds) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (!state_->shutting_down) {
      state_->shutting_down = true;
      state_->deadline = EngineClock::now() + std::chrono::duration_cast<EngineClock::duration>(
                                                  std::chrono::duration<double>(std::max(0.0, grace_seconds)));
    }
  }
  state_->wake.notify_all();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  EngineStats out = state_->snapshot;
  out.waiting += static_cast<int64_t>(state_->incoming.size());
  return out;
}

}  // namespace forma::serve
