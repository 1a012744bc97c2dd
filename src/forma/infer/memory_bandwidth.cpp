#include "forma/infer/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <ATen/Parallel.h>

#include "forma/core/error.h"

namespace forma::infer {

int64_t weight_bytes_per_step(CausalLM& model, int64_t rows) {
  check(rows >= 1, "weight_bytes_per_step: rows must be >= 1, got {}", rows);
  const ModelConfig& config = model->config();
  int64_t bytes = 0;
  for (const auto& item : model->named_parameters()) {
    const torch::Tensor& p = item.value();
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const std::string& name = item.key();
    const bool embedding = name.size() >= 19 && name.compare(name.size() - 19, 19, "embed_tokens.weight") == 0;
    if (embedding && !config.tie_word_embeddings) {
      bytes += std::min<int64_t>(rows, p.size(0)) * p.size(1) * static_cast<int64_t>(p.element_size());
    } else {
      bytes += size;  // a tied embedding is read whole as the output projection
    }
  }
  return bytes;
}

namespace {

// Sum of words [begin, end): four independent integer accumulators, so that the loop is bound by
// the loads (the compiler vectorises it), not by one chain of additions.
uint64_t sum_words(const uint64_t* data, int64_t begin, int64_t end) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  int64_t i = begin;
  for (; i + 4 <= end; i += 4) {
    a += data[i];
    b += data[i + 1];
    c += data[i + 2];
    d += data[i + 3];
  }
  for (; i < end; ++i) a += data[i];
  return a + b + c + d;
}

}  // namespace

double measure_read_bandwidth(int64_t buffer_bytes, int reps) {
  check(buffer_bytes >= (1 << 20) && reps >= 1, "measure_read_bandwidth: needs >= 1 MiB and >= 1 rep");
  const int64_t words = buffer_bytes / static_cast<int64_t>(sizeof(uint64_t));
  // Written once, so that every page is mapped before the timed reads.
  std::vector<uint64_t> buffer(static_cast<size_t>(words), 1);
  const int64_t threads = std::max(1, at::get_num_threads());
  double best = 0;
  for (int rep = 0; rep <= reps; ++rep) {
    std::vector<uint64_t> partial(static_cast<size_t>(threads), 0);
    const auto start = std::chrono::steady_clock::now();
    // One contiguous slice per thread of LibTorch's pool (the threads that run the model).
    at::parallel_for(0, threads, 1, [&](int64_t first, int64_t last) {
      for (int64_t t = first; t < last; ++t) {
        partial[t] = sum_words(buffer.data(), words * t / threads, words * (t + 1) / threads);
      }
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    uint64_t sum = 0;
    for (uint64_t p : partial) sum += p;
    check(sum == static_cast<uint64_t>(words), "measure_read_bandwidth: read {} words of {}", sum, words);
    if (rep > 0 && seconds > 0) best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / seconds);
  }
  return best;
}

}  // namespace forma::infer
