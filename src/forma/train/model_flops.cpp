#include "forma/train/model_flops.h"

namespace forma::train {

int64_t matmul_parameter_count(CausalLM& model) {
  int64_t total = 0;
  for (auto& p : model->named_parameters()) {
    const auto& name = p.key();
    bool embedding = name.find("embed_tokens") != std::string::npos || name.find("embed_positions") != std::string::npos;
    // Only matrices feed matmuls (norm gains and biases are elementwise); the token embedding does
    // too when it is also the output projection.
    if (p.value().dim() < 2) continue;
    if (embedding && !(model->config().tie_word_embeddings && name.find("embed_tokens") != std::string::npos)) continue;
    // MoE: each token passes through num_experts_per_tok of the num_local_experts experts.
    if (model->config().is_moe() && name.find(".experts.") != std::string::npos) {
      total += p.value().numel() * model->config().num_experts_per_tok / model->config().num_local_experts;
      continue;
    }
    total += p.value().numel();
  }
  return total;
}

double training_flops_per_token(CausalLM& model, int64_t seq_len) {
  const auto& c = model->config();
  int64_t head_dim = c.head_dim > 0 ? c.head_dim : c.hidden_size / c.num_attention_heads;
  double attention = 12.0 * static_cast<double>(c.num_hidden_layers * c.num_attention_heads * head_dim * seq_len);
  return 6.0 * static_cast<double>(matmul_parameter_count(model)) + attention;
}

}  // namespace forma::train
