// The one decoder-only causal language model for every architecture in the registry. Module
// names are HF's llama names (model.embed_tokens, model.layers.N.self_attn.q_proj, ..., model.norm,
// lm_head), so named_parameters() of a llama-family model is its HF state dict; gpt2 uses the same
// names plus model.embed_positions (architecture.cpp maps them to transformer.*).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "forma/model/architecture.h"
#include "forma/model/attention.h"
#include "forma/model/config.h"
#include "forma/model/hf_names.h"
#include "forma/model/kv_cache.h"

namespace forma {

// Several samples packed into each batch row (SFT packing): each token's position within its own
// sample, and which sample of the row it belongs to, both [B, T] int64. Attention stays within a
// sample (a block-diagonal causal mask), so every sample computes what it would alone.
struct PackedPositions {
  torch::Tensor position_ids;  // [B, T]: 0, 1, ... from the start of each sample
  torch::Tensor segment_ids;   // [B, T]: equal within a sample, different between neighbours
};

// Embeddings, the layer stack and the final norm: HF's "model" (LlamaModel) submodule.
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const ModelConfig& config);
  // input_ids [B, T] -> final-norm output [B, T, C]. A cache with left padding (kv_cache.h) gives
  // each batch row its own positions and mask. `hidden_states`, when given, receives HF's
  // output_hidden_states tuple (embeddings, each layer's output, then the final-norm output).
  // `packed` (no cache) gives each token its position and sample (PackedPositions).
  torch::Tensor forward(const torch::Tensor& input_ids, KVCache* cache,
                        std::vector<torch::Tensor>* hidden_states = nullptr, const PackedPositions* packed = nullptr);

  const std::vector<torch::Tensor>& router_logits() const { return router_logits_; }
  bool gradient_checkpointing = false;
  AttentionKernel attention_kernel = AttentionKernel::Fused;

 private:
  ModelConfig config_;
  const Architecture* arch_;
  torch::nn::ModuleList layers_;
  // The rope frequencies for a forward reaching `seq_len` (rope_inv_freq), kept while the length
  // does not change them.
  const torch::Tensor& inv_freq_for(int64_t seq_len, const torch::Device& device);
  torch::Tensor inv_freq_;  // rope buffer (non-persistent in HF, so not a registered buffer)
  int64_t inv_freq_length_ = 0;  // the seq_len inv_freq_ was built for (length-dependent rope)
  double rope_scale_ = 1.0;       // rope_attention_factor: multiplies the cos/sin tables
  torch::Tensor local_inv_freq_;  // the sliding layers' own rope (config.local_rope_theta), if any
  std::vector<torch::Tensor> router_logits_;  // per MoE layer, of the last forward
};
TORCH_MODULE(Transformer);

class CausalLMImpl : public torch::nn::Module {
 public:
  // `dtype` is the dtype of the parameters and so of the computation: torch::kFloat or
  // torch::kBFloat16 (an error otherwise). The parameters are created in it (as HF's
  // from_pretrained(torch_dtype=...) does), so a bf16 model never holds an fp32 copy of itself.
  // In bf16, RMSNorm's variance, attention and router softmaxes and the RoPE tables are computed
  // in fp32 and cast back, as HF does, attention's products accumulate in fp32 (the fused kernel's
  // and LibTorch's bf16 matmuls both do), and the logits are returned in fp32.
  explicit CausalLMImpl(const ModelConfig& config, torch::ScalarType dtype = torch::kFloat);

  // input_ids [B,T] int64 -> logits [B,T,V] (fp32). With a cache: appends this call's keys and
  // values at positions cache->length().. and attends over the cache (prefill and decode).
  torch::Tensor forward(const torch::Tensor& input_ids, KVCache* cache = nullptr);
  // As forward, for rows that pack several samples (PackedPositions); the plain path when null.
  torch::Tensor forward_packed(const torch::Tensor& input_ids, const PackedPositions* packed);
  // As forward, also filling HF's output_hidden_states tuple.
  torch::Tensor forward_with_hidden_states(const torch::Tensor& input_ids,
                                           std::vector<torch::Tensor>* hidden_states,
                                           KVCache* cache = nullptr);
  // The output projection of final-norm hidden states [..., C] -> fp32 logits [..., V] (what
  // forward() applies to every position; generation applies it to the last one only), soft-capped
  // by config.final_logit_softcapping when set.
  torch::Tensor output_logits(const torch::Tensor& hidden);
  // Load-balancing auxiliary loss of the last forward (already times router_aux_loss_coef, as HF
  // MixtralForCausalLM adds it to the loss); a zero scalar for dense models.
  torch::Tensor aux_loss() const;
  const ModelConfig& config() const { return config_; }
  torch::ScalarType dtype() const { return dtype_; }
  // As HF's _init_weights: Linear/Embedding weights normal(0, initializer_range), biases zero,
  // norms at 1 (gpt2 additionally scales residual projections by 1/sqrt(2 * n_layer)).
  void init_weights(uint64_t seed);
  // Recompute each decoder layer in backward instead of keeping its activations.
  void set_gradient_checkpointing(bool enabled) { model_->gradient_checkpointing = enabled; }
  // Fused scaled-dot-product attention (the default) or the explicit reference (attention.h).
  void set_attention_kernel(AttentionKernel kernel) { model_->attention_kernel = kernel; }
  AttentionKernel attention_kernel() const { return model_->attention_kernel; }
  // The output projection [V, C]: lm_head's weight, or the embedding's when tied.
  torch::Tensor output_weight();

  Transformer& transformer() { return model_; }

 private:
  ModelConfig config_;
  torch::ScalarType dtype_;
  Transformer model_{nullptr};
};
TORCH_MODULE(CausalLM);

// Mean cross entropy of logits[:, :-1] against labels[:, 1:] (HF's shift), ignoring -100.
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace forma
