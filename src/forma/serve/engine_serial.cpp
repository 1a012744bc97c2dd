// STAND-IN: a simple, correct implementation of serve/engine.h that runs one request at a time
// with the existing infer:: code (a contiguous KVCache per request, infer::SequenceDecoder). It
// exists so that the server could be built and tested before the real engine (engine.cpp:
// continuous batching, paged KV cache) landed. The lead deletes this file when engine.cpp lands;
// nothing else in serve/ may depend on how it works.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "forma/core/error.h"
#include "forma/infer/sequence_decoder.h"
#include "forma/model/kv_cache.h"
#include "forma/serve/engine.h"

namespace forma::serve {

namespace serial_engine {

struct Pending {
  uint64_t id = 0;
  EngineRequest request;
  RequestCallbacks callbacks;
};

// The log-probabilities of `token` and the `top` most likely ids under logits [V].
PositionLogprobs position_logprobs(const torch::Tensor& logits, int32_t token, int64_t top) {
  torch::Tensor lp = torch::log_softmax(logits.to(torch::kFloat).cpu(), -1);
  PositionLogprobs out;
  out.token = {token, lp[token].item<float>()};
  if (top > 0) {
    auto [values, ids] = lp.topk(std::min<int64_t>(top, lp.size(0)));
    for (int64_t i = 0; i < values.size(0); ++i) {
      out.top.push_back({static_cast<int32_t>(ids[i].item<int64_t>()), values[i].item<float>()});
    }
  }
  return out;
}

torch::Tensor row_of(const std::vector<int32_t>& ids, torch::Device device) {
  return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).to(device).unsqueeze(0);
}

}  // namespace serial_engine

using serial_engine::Pending;

struct Engine::State {
  CausalLM& model;
  const tok::Tokenizer* tokenizer;
  EngineOptions options;
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<Pending> queue;
  std::set<uint64_t> cancelled;
  uint64_t next_id = 1;
  uint64_t running_id = 0;  // 0 = none
  bool shutting_down = false;
  std::chrono::steady_clock::time_point deadline;

  State(CausalLM& m, const tok::Tokenizer* t, const EngineOptions& o) : model(m), tokenizer(t), options(o) {}

  bool should_stop(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex);
    if (cancelled.count(id)) return true;
    return shutting_down && std::chrono::steady_clock::now() >= deadline;
  }
  void run_one(Pending& p);
};

Engine::Engine(CausalLM& model, const tok::Tokenizer* tokenizer, const EngineOptions& options)
    : state_(std::make_unique<State>(model, tokenizer, options)) {
  check(options.max_batch >= 1, "engine: max_batch must be >= 1, got {}", options.max_batch);
  check(options.max_queue >= 1, "engine: max_queue must be >= 1, got {}", options.max_queue);
}

Engine::~Engine() = default;

uint64_t Engine::submit(EngineRequest request, RequestCallbacks callbacks) {
  const std::string& label = request.label;
  const ModelConfig& mc = state_->model->config();
  try {
    check(request.top_logprobs >= 0, "top_logprobs must be >= 0, got {}", request.top_logprobs);
    if (request.config.max_new_tokens == 0 && request.echo_logprobs) {
      infer::GenerationConfig probe = request.config;
      probe.max_new_tokens = 1;
      probe.validate();
      infer::generation_budget(mc, request.prompt_ids, 1);
    } else {
      request.config.validate();
      infer::generation_budget(mc, request.prompt_ids, request.config.max_new_tokens);
    }
    const auto total = static_cast<int64_t>(request.prompt_ids.size());
    if (state_->options.kv_cache_tokens > 0) {
      check(total <= state_->options.kv_cache_tokens, "the prompt has {} tokens, the KV cache holds {}", total,
            state_->options.kv_cache_tokens);
    }
    check(state_->tokenizer || request.config.stop_strings.empty(), "stop strings need a tokenizer");
  } catch (const Error& e) {
    fail("{}: {}", label.empty() ? "request" : label, e.what());
  }
  std::lock_guard<std::mutex> lock(state_->mutex);
  check(!state_->shutting_down, "{}: the server is shutting down", label.empty() ? "request" : label);
  if (static_cast<int64_t>(state_->queue.size()) >= state_->options.max_queue) {
    throw QueueFull("the queue is full (" + std::to_string(state_->options.max_queue) + " waiting requests)");
  }
  const uint64_t id = state_->next_id++;
  state_->queue.push_back(Pending{id, std::move(request), std::move(callbacks)});
  state_->wake.notify_all();
  return id;
}

void Engine::cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  // Only live requests are remembered: finished ids would otherwise accumulate.
  const bool queued = std::any_of(state_->queue.begin(), state_->queue.end(),
                                  [id](const Pending& p) { return p.id == id; });
  if (!queued && state_->running_id != id) return;
  state_->cancelled.insert(id);
  state_->wake.notify_all();
}

void Engine::State::run_one(Pending& p) {
  FinishedEvent finished;
  const EngineRequest& r = p.request;
  finished.prompt_tokens = static_cast<int64_t>(r.prompt_ids.size());
  try {
    torch::NoGradGuard no_grad;
    infer::EvalModeGuard eval_guard(model);
    const torch::Device device = model->parameters().front().device();
    const int64_t new_tokens = r.config.max_new_tokens;
    const auto prompt_len = static_cast<int64_t>(r.prompt_ids.size());
    std::string pending_text;
    infer::GenerationCallbacks gen_callbacks;
    gen_callbacks.on_text = [&](std::string_view piece) { pending_text += piece; };
    std::optional<infer::SequenceDecoder> decoder;
    if (new_tokens > 0) decoder.emplace(model->config(), r.prompt_ids, r.config, tokenizer, gen_callbacks);
    KVCache cache(model->config(), prompt_len + (decoder ? decoder->budget() : 0));
    torch::Tensor hidden = model->transformer()->forward(serial_engine::row_of(r.prompt_ids, device), &cache);
    if (r.echo_logprobs && prompt_len > 1) {
      torch::Tensor all = model->output_logits(hidden.select(0, 0));  // [T, V]
      for (int64_t t = 1; t < prompt_len; ++t) {
        finished.prompt_logprobs.push_back(serial_engine::position_logprobs(all[t - 1], r.prompt_ids[t], r.top_logprobs));
      }
    }
    bool cancelled_now = false;
    if (decoder) {
      torch::Tensor logits = model->output_logits(hidden.select(1, -1)).select(0, 0);  // [V]
      while (true) {
        if (should_stop(p.id)) {
          cancelled_now = true;
          break;
        }
        const int32_t token = decoder->step(logits);
        TokenEvent event;
        event.id = token;
        event.text = std::move(pending_text);
        pending_text.clear();
        if (r.logprobs) event.logprobs = serial_engine::position_logprobs(logits, token, r.top_logprobs);
        if (p.callbacks.on_token) p.callbacks.on_token(event);
        if (decoder->done()) break;
        torch::Tensor h = model->transformer()->forward(serial_engine::row_of({token}, device), &cache);
        logits = model->output_logits(h.select(1, -1)).select(0, 0);
      }
      finished.result = decoder->finish();
    }
    if (cancelled_now) {
      finished.reason = FinishReason::kCancelled;
    } else {
      const auto stop = finished.result.stop_reason;
      finished.reason = (decoder && (stop == infer::StopReason::kMaxNewTokens || stop == infer::StopReason::kContextLength))
                            ? FinishReason::kLength
                            : FinishReason::kStop;
      if (!decoder) finished.reason = FinishReason::kLength;
    }
  } catch (const std::exception& e) {
    finished.reason = FinishReason::kError;
    finished.error = e.what();
  }
  if (p.callbacks.on_finish) p.callbacks.on_finish(finished);
}

bool Engine::step() {
  Pending p;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->queue.empty()) return false;
    p = std::move(state_->queue.front());
    state_->queue.pop_front();
    state_->running_id = p.id;
  }
  if (state_->should_stop(p.id)) {
    FinishedEvent finished;
    finished.reason = FinishReason::kCancelled;
    finished.prompt_tokens = static_cast<int64_t>(p.request.prompt_ids.size());
    if (p.callbacks.on_finish) p.callbacks.on_finish(finished);
  } else {
    state_->run_one(p);
  }
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->cancelled.erase(p.id);
  state_->running_id = 0;
  return true;
}

void Engine::run() {
  while (true) {
    if (step()) continue;
    std::unique_lock<std::mutex> lock(state_->mutex);
    if (state_->shutting_down && state_->queue.empty()) return;
    state_->wake.wait_for(lock, std::chrono::milliseconds(50));
  }
}

void Engine::begin_shutdown(double grace_seconds) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (!state_->shutting_down) {
    state_->shutting_down = true;
    state_->deadline = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(std::max(0.0, grace_seconds)));
  }
  state_->wake.notify_all();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  EngineStats s;
  s.waiting = static_cast<int64_t>(state_->queue.size());
  s.running = state_->running_id != 0 ? 1 : 0;
  return s;
}

}  // namespace forma::serve
