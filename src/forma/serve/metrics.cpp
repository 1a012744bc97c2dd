#include "forma/serve/metrics.h"

#include <fmt/format.h>

namespace forma::serve {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
  return out;
}

namespace metrics_detail {
const std::vector<double> kLatencyBounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
const std::vector<double> kE2eBounds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}  // namespace metrics_detail

Metrics::Metrics()
    : ttft_(metrics_detail::kLatencyBounds), tpot_(metrics_detail::kLatencyBounds), e2e_(metrics_detail::kE2eBounds) {}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::generation(int64_t prompt_tokens, int64_t generated_tokens, double ttft_seconds, double e2e_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
  if (ttft_seconds >= 0) {
    ttft_.observe(ttft_seconds);
    // Time per output token after the first, as vLLM defines it.
    if (generated_tokens > 1) tpot_.observe((e2e_seconds - ttft_seconds) / static_cast<double>(generated_tokens - 1));
  }
  e2e_.observe(e2e_seconds);
}

std::string Metrics::render(const EngineStats& stats) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "# HELP forma_requests_total HTTP requests answered, by endpoint and status.\n"
                    "# TYPE forma_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out += fmt::format("forma_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, count);
  }
  out += fmt::format(
      "# HELP forma_prompt_tokens_total Prompt tokens processed.\n# TYPE forma_prompt_tokens_total counter\n"
      "forma_prompt_tokens_total {}\n"
      "# HELP forma_generation_tokens_total Tokens generated.\n# TYPE forma_generation_tokens_total counter\n"
      "forma_generation_tokens_total {}\n",
      prompt_tokens_, generated_tokens_);
  out += ttft_.render("forma_time_to_first_token_seconds", "Time from arrival to the first generated token.");
  out += tpot_.render("forma_time_per_output_token_seconds", "Mean time per generated token after the first.");
  out += e2e_.render("forma_e2e_request_latency_seconds", "Time from arrival to the last token.");
  const double kv_use = stats.kv_blocks_total > 0
                            ? static_cast<double>(stats.kv_blocks_used) / static_cast<double>(stats.kv_blocks_total)
                            : 0.0;
  out += fmt::format(
      "# HELP forma_num_requests_waiting Requests queued, not yet running.\n# TYPE forma_num_requests_waiting gauge\n"
      "forma_num_requests_waiting {}\n"
      "# HELP forma_num_requests_running Requests in the running batch.\n# TYPE forma_num_requests_running gauge\n"
      "forma_num_requests_running {}\n"
      "# HELP forma_kv_cache_usage_ratio Fraction of KV-cache blocks in use.\n# TYPE forma_kv_cache_usage_ratio gauge\n"
      "forma_kv_cache_usage_ratio {}\n"
      "# HELP forma_kv_cache_blocks_used KV-cache blocks in use.\n# TYPE forma_kv_cache_blocks_used gauge\n"
      "forma_kv_cache_blocks_used {}\n"
      "# HELP forma_kv_cache_blocks_total KV-cache blocks in the pool.\n# TYPE forma_kv_cache_blocks_total gauge\n"
      "forma_kv_cache_blocks_total {}\n"
      "# HELP forma_preemptions_total Sequences preempted for lack of KV blocks.\n# TYPE forma_preemptions_total counter\n"
      "forma_preemptions_total {}\n"
      "# HELP forma_prefix_cache_hit_tokens_total Prompt tokens served from the prefix cache.\n"
      "# TYPE forma_prefix_cache_hit_tokens_total counter\n"
      "forma_prefix_cache_hit_tokens_total {}\n",
      stats.waiting, stats.running, kv_use, stats.kv_blocks_used, stats.kv_blocks_total, stats.preemptions,
      stats.prefix_cache_hit_tokens);
  return out;
}

}  // namespace forma::serve
