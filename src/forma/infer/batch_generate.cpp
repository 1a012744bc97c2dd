#include "forma/infer/batch_generate.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/infer/sequence_decoder.h"

namespace forma::infer {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Any id the model accepts: padding positions are masked, their token never matters.
constexpr int64_t kPaddingId = 0;

std::string request_label(const std::vector<BatchRequest>& requests, size_t index) {
  return requests[index].label.empty() ? fmt::format("request {}", index + 1) : requests[index].label;
}

// int64 [n] on `device`.
torch::Tensor long_tensor(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::kLong).to(device);
}

}  // namespace

std::vector<GenerationResult> generate_batch(CausalLM& model, const std::vector<BatchRequest>& requests,
                                             const tok::Tokenizer* tokenizer, BatchTimings* timings) {
  check(!requests.empty(), "generation: the batch has no requests");
  const ModelConfig& model_config = model->config();
  const auto rows = static_cast<int64_t>(requests.size());
  std::vector<std::unique_ptr<SequenceDecoder>> decoders;
  int64_t longest_prompt = 0, longest_budget = 0, prompt_tokens = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const BatchRequest& request = requests[i];
    try {
      decoders.push_back(std::make_unique<SequenceDecoder>(model_config, request.prompt_ids, request.config,
                                                           tokenizer, request.callbacks));
    } catch (const Error& e) {
      fail("{}: {}", request_label(requests, i), e.what());
    }
    const auto length = static_cast<int64_t>(request.prompt_ids.size());
    longest_prompt = std::max(longest_prompt, length);
    longest_budget = std::max(longest_budget, decoders.back()->budget());
    prompt_tokens += length;
  }

  torch::NoGradGuard no_grad;
  EvalModeGuard eval_guard(model);
  const torch::Device device = model->parameters().front().device();

  // [rows, longest_prompt], each prompt at the right end of its row.
  std::vector<int64_t> padded(rows * longest_prompt, kPaddingId), padding(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const auto& prompt = requests[r].prompt_ids;
    padding[r] = longest_prompt - static_cast<int64_t>(prompt.size());
    std::copy(prompt.begin(), prompt.end(), padded.begin() + r * longest_prompt + padding[r]);
  }
  // Room for the longest prompt and the longest budget (the last token is never fed back: one spare).
  KVCache cache(model_config, longest_prompt + longest_budget);
  cache.set_left_padding(long_tensor(padding, device));

  const auto start = Clock::now();
  torch::Tensor input = long_tensor(padded, device).view({rows, longest_prompt});
  // Next-token logits of every row: the output projection of the last position only.
  auto next_logits = [&](const torch::Tensor& ids) {
    torch::Tensor hidden = model->transformer()->forward(ids, &cache);  // [B, T, C]
    return model->output_logits(hidden.select(1, -1)).to(torch::kCPU);  // [B, V]
  };
  torch::Tensor logits = next_logits(input);
  const double prefill_seconds = seconds_since(start);
  const auto decode_start = Clock::now();

  std::vector<int64_t> active(rows);  // request index of each batch row
  std::iota(active.begin(), active.end(), 0);
  int64_t forwards = 0;
  while (true) {
    std::vector<int64_t> kept_rows, still_active, next_tokens;
    for (size_t row = 0; row < active.size(); ++row) {
      SequenceDecoder& decoder = *decoders[active[row]];
      const int32_t token = decoder.step(logits[static_cast<int64_t>(row)]);
      if (decoder.done()) continue;
      kept_rows.push_back(static_cast<int64_t>(row));
      still_active.push_back(active[row]);
      next_tokens.push_back(token);
    }
    if (still_active.empty()) break;
    if (still_active.size() < active.size()) cache.select_rows(long_tensor(kept_rows, device));
    active = std::move(still_active);
    logits = next_logits(long_tensor(next_tokens, device).view({-1, 1}));
    ++forwards;
  }

  std::vector<GenerationResult> results;
  int64_t generated = 0;
  for (auto& decoder : decoders) {
    results.push_back(decoder->finish());
    generated += static_cast<int64_t>(results.back().ids.size());
  }
  const double decode_seconds = seconds_since(decode_start);
  log::debug("batch generation: {} prompts ({} tokens, padded to {}) in {:.3f} s, {} new tokens in {:.3f} s "
             "({:.1f} tokens/s)",
             rows, prompt_tokens, rows * longest_prompt, prefill_seconds, generated, decode_seconds,
             decode_seconds > 0 ? generated / decode_seconds : 0.0);
  if (timings) {
    timings->prefill_seconds += prefill_seconds;
    timings->decode_seconds += decode_seconds;
    timings->prompt_tokens += prompt_tokens;
    timings->padded_tokens += rows * longest_prompt;
    timings->generated_tokens += generated;
    timings->decode_forwards += forwards;
  }
  return results;
}

std::vector<GenerationResult> generate_batches(CausalLM& model, const std::vector<BatchRequest>& requests,
                                               int64_t max_batch, const tok::Tokenizer* tokenizer,
                                               BatchTimings* timings) {
  check(max_batch >= 1, "generation: the batch size must be >= 1, got {}", max_batch);
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].prompt_ids.size() < requests[b].prompt_ids.size();
  });
  std::vector<GenerationResult> results(requests.size());
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(max_batch)) {
    const size_t last = std::min(order.size(), first + static_cast<size_t>(max_batch));
    std::vector<BatchRequest> batch;
    for (size_t k = first; k < last; ++k) {
      batch.push_back(requests[order[k]]);
      if (batch.back().label.empty()) batch.back().label = request_label(requests, order[k]);
    }
    auto batch_results = generate_batch(model, batch, tokenizer, timings);
    for (size_t k = first; k < last; ++k) results[order[k]] = std::move(batch_results[k - first]);
  }
  return results;
}

}  // namespace forma::infer
