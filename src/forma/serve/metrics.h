// The server's counters and histograms, rendered in Prometheus's text exposition format (version
// 0.0.4) for GET /metrics. Thread-safe: request threads record, the scraper renders.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "forma/serve/engine.h"

namespace forma::serve {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // `name`_bucket{le=...}, `name`_sum and `name`_count lines.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, plus +Inf last (not cumulative; render sums)
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One finished HTTP request on `endpoint` (e.g. "/v1/completions") with its status.
  void request(const std::string& endpoint, int status);
  // One finished generation (a choice): its token counts and timings. ttft < 0: no token came.
  void generation(int64_t prompt_tokens, int64_t generated_tokens, double ttft_seconds, double e2e_seconds);
  // The whole exposition, with the engine's gauges (queue, running, KV-cache blocks).
  std::string render(const EngineStats& stats) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, tpot_, e2e_;
};

}  // namespace forma::serve
