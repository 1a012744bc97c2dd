// Test helpers for the serving engine: run requests through an Engine by calling step() until
// every one has finished, collecting each request's token events and finish event.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "forma/infer/generate.h"
#include "forma/serve/engine.h"

namespace forma::serve::test_engine {

struct Outcome {
  std::vector<TokenEvent> tokens;
  std::optional<FinishedEvent> finished;
  int finish_calls = 0;
};

inline infer::GenerationConfig greedy(int64_t max_new_tokens) {
  infer::GenerationConfig config;
  config.max_new_tokens = max_new_tokens;
  config.sampling.temperature = 0.0;
  return config;
}

inline EngineRequest request_of(std::vector<int32_t> prompt, infer::GenerationConfig config) {
  EngineRequest request;
  request.prompt_ids = std::move(prompt);
  request.config = std::move(config);
  return request;
}

// Random ids in [0, vocab) from a fixed seed.
inline std::vector<int32_t> random_ids(int64_t length, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < length; ++i) ids.push_back(token(rng));
  return ids;
}

// Submits `requests[i]` before step number `arrival[i]` (all at once when arrival is empty), then
// steps until every request has finished. Outcomes in request order.
inline std::vector<Outcome> serve(Engine& engine, const std::vector<EngineRequest>& requests,
                                  const std::vector<int>& arrival = {}) {
  std::vector<Outcome> outcomes(requests.size());
  size_t submitted = 0, finished = 0;
  std::vector<size_t> order(requests.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!arrival.empty()) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return arrival[a] < arrival[b]; });
  }
  for (int step = 0; finished < requests.size(); ++step) {
    while (submitted < order.size() && (arrival.empty() || arrival[order[submitted]] <= step)) {
      const size_t i = order[submitted++];
      RequestCallbacks callbacks;
      callbacks.on_token = [&outcomes, i](const TokenEvent& e) { outcomes[i].tokens.push_back(e); };
      callbacks.on_finish = [&outcomes, &finished, i](const FinishedEvent& e) {
        outcomes[i].finished = e;
        ++outcomes[i].finish_calls;
        ++finished;
      };
      engine.submit(requests[i], callbacks);
    }
    engine.step();
    if (step > 100000) break;  // a scheduler bug, not a slow test: fail below instead of hanging
  }
  return outcomes;
}

// One request through a fresh engine of its own.
inline Outcome serve_alone(CausalLM& model, const EngineRequest& request, EngineOptions options = {}) {
  Engine engine(model, nullptr, options);
  return serve(engine, {request}).front();
}

}  // namespace forma::serve::test_engine
