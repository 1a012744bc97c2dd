#include "forma/model/model_stats.h"

#include "forma/model/architecture.h"

namespace forma {

namespace {

struct LayerCounts {
  int64_t attention = 0, norms = 0, dense_mlp = 0, router = 0, expert = 0;
};

// Mirrors the modules built by causal_lm.cpp (biases per the architecture registry's rules).
LayerCounts count_layer(const ModelConfig& c, bool sparse) {
  const Architecture& arch = architecture_for(c);
  const bool qkv_bias = arch.qkv_bias(c), o_bias = arch.o_bias(c), mlp_bias = arch.mlp_bias(c);
  const bool layer_norm = arch.norm == NormKind::LayerNorm;
  // A dense layer of an MoE model (qwen2_moe's mlp_only_layers) has its own width.
  const int64_t C = c.hidden_size, I = c.is_moe() && !sparse ? c.dense_intermediate_size : c.intermediate_size;
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  LayerCounts n;
  n.attention = C * q + 2 * C * kv + q * C;
  if (qkv_bias) n.attention += q + 2 * kv;
  if (o_bias) n.attention += C;
  if (c.qk_norm) n.attention += 2 * c.head_dim;
  if (c.qk_norm_whole) n.attention += q + kv;
  if (c.head_layernorm) n.attention += (c.num_attention_heads + c.num_key_value_heads) * c.head_dim;
  if (c.kv_lora_rank > 0) {  // MLA (mla_attention.h): q (direct or through its latent), kv latent, o
    const int64_t H = c.num_attention_heads, qk = c.qk_nope_head_dim + c.head_dim, r = c.kv_lora_rank;
    const int64_t bias = c.attention_bias ? 1 : 0;
    n.attention = c.q_lora_rank > 0 ? C * c.q_lora_rank + bias * c.q_lora_rank + c.q_lora_rank + c.q_lora_rank * H * qk
                                    : C * H * qk;
    n.attention += C * (r + c.head_dim) + bias * (r + c.head_dim) + r + r * H * (c.qk_nope_head_dim + c.v_head_dim);
    n.attention += H * c.v_head_dim * C + bias * C;
  }
  // Pre-norm: input and post-attention norms (one in a parallel block, two when its MLP has its
  // own); sandwich: the post norms of both blocks plus, unless absent, their pre norms.
  const int64_t norm_count = c.post_block_norms ? (c.pre_block_norms ? 4 : 2)
                                                : (c.parallel_block && !c.parallel_mlp_norm ? 1 : 2);
  n.norms = (layer_norm && c.norm_bias ? 2 * C : C) * norm_count;  // LayerNorm has weight and bias
  if (c.norm_without_parameters) n.norms = 0;  // olmo
  if (sparse) {
    n.router = C * c.num_local_experts;
    // The shared expert and its one-output gate run on every token: counted with the router.
    if (c.shared_expert_intermediate_size > 0) {
      n.router += 3 * C * c.shared_expert_intermediate_size + (c.shared_expert_ungated ? 0 : C);
    }
    n.expert = 3 * C * I;
  } else if (!arch.gated_mlp) {
    n.dense_mlp = 2 * C * I + (mlp_bias ? I + C : 0);
  } else {
    n.dense_mlp = 3 * C * I + (mlp_bias ? 2 * I + C : 0);
  }
  return n;
}

}  // namespace

ParameterCounts count_parameters(const ModelConfig& c) {
  const int64_t C = c.hidden_size;
  const Architecture& arch = architecture_for(c);
  ParameterCounts n;
  n.embedding = c.vocab_size * C + (arch.position == PositionKind::Learned ? c.max_position_embeddings * C : 0);
  const int64_t final_norm = c.norm_without_parameters ? 0 : arch.norm == NormKind::LayerNorm && c.norm_bias ? 2 * C : C;
  const int64_t lm_head = c.tie_word_embeddings ? 0 : c.vocab_size * C + (c.lm_head_bias ? c.vocab_size : 0);
  // Layers differ only where an MoE model has dense ones: one count per kind, times how many.
  const int64_t L = c.num_hidden_layers;
  int64_t sparse_layers = 0;
  for (int64_t i = 0; i < L; ++i) sparse_layers += c.layer_is_sparse(i);
  int64_t layers_total = 0, layers_active = 0;
  for (const auto& [sparse, count] : {std::pair{true, sparse_layers}, std::pair{false, L - sparse_layers}}) {
    if (count == 0) continue;
    const LayerCounts layer = count_layer(c, sparse);
    const int64_t common = layer.attention + layer.norms + layer.dense_mlp + layer.router;
    layers_total += count * (common + layer.expert * c.num_local_experts);
    layers_active += count * (common + layer.expert * c.num_experts_per_tok);
  }
  // bloom's LayerNorm on the embeddings counts with the final norm (not a matmul).
  const int64_t norms = final_norm + (c.embedding_norm ? final_norm : 0);
  n.total = n.embedding + layers_total + norms + lm_head;
  n.active = n.embedding + layers_active + norms + lm_head;
  n.matmul_active = n.active - n.embedding + c.vocab_size * C * (c.tie_word_embeddings ? 1 : 0);
  return n;
}

namespace {
// Per head, the widths of q.k and of v: head_dim both, except MLA's (nope + rope dims, v_head_dim).
double qk_plus_v_dims(const ModelConfig& c) {
  if (c.kv_lora_rank > 0) return static_cast<double>(c.qk_nope_head_dim + c.head_dim + c.v_head_dim);
  return 2.0 * static_cast<double>(c.head_dim);
}
}  // namespace

double training_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  const double N = static_cast<double>(count_parameters(c).matmul_active);
  return 6.0 * N + 6.0 * c.num_hidden_layers * c.num_attention_heads * qk_plus_v_dims(c) * static_cast<double>(seq_len);
}

double inference_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  const double N = static_cast<double>(count_parameters(c).matmul_active);
  return 2.0 * N + 2.0 * c.num_hidden_layers * c.num_attention_heads * qk_plus_v_dims(c) * static_cast<double>(seq_len);
}

TrainingMemory training_memory(const ModelConfig& c, bool bf16) {
  const double N = static_cast<double>(count_parameters(c).total);
  TrainingMemory m;
  m.weights = N * (bf16 ? 2 : 4);
  m.gradients = N * (bf16 ? 2 : 4);
  m.adam_moments = N * 8;
  m.master_weights = bf16 ? N * 4 : 0;
  return m;
}

double kv_cache_bytes(const ModelConfig& c, int64_t batch, int64_t seq_len, int bytes_per_value) {
  // MLA: forma's cache holds every head's up-projected k and v (mla_attention.h).
  return c.num_hidden_layers * batch * static_cast<double>(seq_len) * c.num_key_value_heads * qk_plus_v_dims(c) *
         bytes_per_value;
}

double inference_memory(const ModelConfig& c, int64_t batch, int64_t seq_len, int bytes_per_value) {
  return static_cast<double>(count_parameters(c).total) * bytes_per_value +
         kv_cache_bytes(c, batch, seq_len, bytes_per_value);
}

}  // namespace forma
