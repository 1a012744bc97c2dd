#include "forma/infer/memory_bandwidth.h"

#include <algorithm>

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

}  // namespace forma::infer
