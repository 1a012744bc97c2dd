// The model configuration IS a Hugging Face config.json: the same field names, HF's defaults per
// model_type, GPT-2's own names (n_embd, n_layer, ...) mapped onto the same struct. Keys forma does
// not use are kept in `extra` so that a config survives load -> save unchanged.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace forma {

// HF rope_scaling (transformers 5: rope_parameters). rope_type "linear": positions divided by
// `factor`. "llama3": Llama 3.1's frequency-dependent scaling with low/high_freq_factor and
// original_max_position_embeddings. "yarn": YaRN's ramp between interpolated and extrapolated
// frequencies (beta_fast/beta_slow) and an attention factor on cos/sin. "dynamic": NTK-aware base
// rescaled by the length a forward reaches beyond max_position_embeddings. "longrope" (Phi-3):
// per-frequency short_factor, or long_factor once a forward reaches past
// original_max_position_embeddings, and an attention factor.
struct RopeScaling {
  std::string rope_type;  // "linear" | "llama3" | "yarn" | "dynamic" | "longrope"
  double factor = 1.0;
  bool factor_given = true;  // longrope: absent factor means max_position / original_max
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
  double beta_fast = 32.0;  // yarn
  double beta_slow = 1.0;
  bool truncate = true;
  std::optional<double> mscale, mscale_all_dim;
  std::optional<double> attention_factor;  // yarn, longrope: absent means the paper's formula
  std::vector<double> short_factor, long_factor;  // longrope: one per rotary frequency
};

struct ModelConfig {
  std::string model_type;            // a registered architecture (architecture.h)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;           // gpt2: n_embd
  int64_t intermediate_size = 0;     // gpt2: n_inner (null -> 4 * n_embd)
  int64_t num_hidden_layers = 0;     // gpt2: n_layer
  int64_t num_attention_heads = 0;   // gpt2: n_head
  int64_t num_key_value_heads = 0;   // absent -> num_attention_heads
  int64_t head_dim = 0;              // absent -> hidden_size / num_attention_heads
  std::string hidden_act = "silu";   // gpt2: activation_function
  int64_t max_position_embeddings = 0;  // gpt2: n_positions
  double norm_eps = 1e-6;            // rms_norm_eps, or gpt2's layer_norm_epsilon
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool attention_bias = false;       // bias on q/k/v/o (qwen2: q/k/v always, o never)
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;  // mistral/mixtral/qwen2; null = full attention
  bool use_sliding_window = true;    // qwen2 only: sliding_window is ignored unless true
  bool tie_word_embeddings = false;
  // Generic features the specs (arch/*.cpp) switch on; modules read these, never model_type.
  bool qk_norm = false;              // RMSNorm over head_dim on each q and k head, before RoPE (qwen3)
  bool norm_weight_offset = false;   // every norm scales by (1 + weight), weight initialised to 0 (gemma)
  bool scale_embeddings = false;     // embeddings times sqrt(hidden_size) rounded to the model dtype (gemma)
  // RoPE on the first rotary_dim() dims of each head only, the rest pass through (stablelm, phi).
  double partial_rotary_factor = 1.0;
  // RoPE pairs adjacent dims (2i, 2i+1) (GPT-J's rotate_every_two) instead of dims i and i + D/2.
  bool rope_interleaved = false;
  // h = x + attn(ln(x)) + mlp(ln(x)) from input_layernorm alone: no post_attention_layernorm (phi).
  bool parallel_block = false;
  // With parallel_block: the MLP reads post_attention_layernorm(x), a norm of its own, so
  // h = x + attn(ln1(x)) + mlp(ln2(x)) (gpt_neox's use_parallel_residual).
  bool parallel_mlp_norm = false;
  bool lm_head_bias = false;         // phi
  // A bias-free LayerNorm per q and k head, each head its own weights, before RoPE (stablelm's
  // qk_layernorm; HF children q_layernorm.norms.{h}, k_layernorm.norms.{h}).
  bool head_layernorm = false;
  double attention_scale = 0.0;  // softmax scale of q.k; 0 means 1/sqrt(head_dim)
  double embedding_multiplier = 1.0;  // embeddings times this (granite; gemma's scale is scale_embeddings)
  double residual_multiplier = 1.0;   // x + m * attn(...), h + m * mlp(...) (granite)
  double logit_scale = 1.0;           // logits times this (granite: 1 / logits_scaling)
  bool norm_without_parameters = false;  // every hidden-size norm has no weight and no bias (olmo)
  bool norm_bias = true;  // LayerNorms over hidden_size carry a bias (false: weight only, cohere)
  double clip_qkv = 0.0;  // q, k, v projections clamped to [-clip_qkv, clip_qkv]; 0: none (olmo)
  // tanh soft-caps (0: none): attention scores = tanh(scores / cap) * cap before the mask, which
  // the fused kernel cannot do (the explicit path computes them), and the logits likewise (gemma2).
  double attn_logit_softcapping = 0.0;
  double final_logit_softcapping = 0.0;
  // Sandwich norms: post_attention_layernorm normalises the attention output before the residual
  // add, post_feedforward_layernorm the MLP's, and pre_feedforward_layernorm is the MLP's input
  // norm (gemma2). Without pre_block_norms neither input_layernorm nor pre_feedforward_layernorm
  // exists: x + norm(attn(x)), x + norm(mlp(x)) (olmo2).
  bool post_block_norms = false;
  bool pre_block_norms = true;
  // RMSNorm over the whole q and k projections (all heads: q_norm has num_heads * head_dim weights),
  // before the split into heads and RoPE (olmo2); qk_norm is the per-head kind.
  bool qk_norm_whole = false;
  // RoPE theta of the sliding-window layers, unscaled (gemma3's rope_local_base_freq); 0: every
  // layer uses rope_theta and rope_scaling.
  double local_rope_theta = 0.0;
  bool moe_renormalize = true;  // top-k router weights renormalised to sum 1 (mixtral); false: softmax probabilities as they are (olmoe, qwen2_moe)
  int64_t shared_expert_intermediate_size = 0;  // a dense SwiGLU expert every token goes through, scaled by sigmoid(shared_expert_gate(x)); 0: none (qwen2_moe)
  // Where an MoE model mixes dense MLP layers in (qwen2_moe/qwen3_moe's decoder_sparse_step and
  // mlp_only_layers), which layers hold the sparse block; empty: all of them (when is_moe()).
  std::vector<bool> sparse_layers;
  int64_t dense_intermediate_size = 0;  // the MLP width of an MoE model's dense layers (qwen2_moe's intermediate_size)
  // ALiBi: a per-head linear distance bias added to the attention scores, no RoPE (bloom). Head h
  // adds slope_h * (j - i) for key j and query i (HF's slope_h * j up to a per-row constant).
  bool alibi = false;
  bool embedding_norm = false;  // a LayerNorm on the embeddings before the first layer (bloom)
  // Multi-head latent attention when kv_lora_rank > 0 (deepseek_v2/v3, mla_attention.h): k and v
  // come up from a kv_lora_rank latent, each q/k head is qk_nope_head_dim dims without RoPE then
  // head_dim (HF's qk_rope_head_dim) with it, v heads v_head_dim; q_lora_rank > 0: q from a latent too.
  int64_t kv_lora_rank = 0;
  int64_t q_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t v_head_dim = 0;
  // DeepSeek's routers: sigmoid scores, e_score_correction_bias added for the choice only (v3;
  // else softmax); experts in moe_groups groups of which the moe_topk_groups best (max score,
  // sigmoid: sum of the top 2) are eligible; chosen weights times routed_scaling_factor.
  bool moe_sigmoid_scores = false;
  int64_t moe_groups = 1, moe_topk_groups = 1;
  double routed_scaling_factor = 1.0;
  bool shared_expert_ungated = false;  // the shared expert added as is, no shared_expert_gate (deepseek)
  int64_t num_local_experts = 0;     // mixtral; 0 = dense MLP
  int64_t num_experts_per_tok = 0;
  double router_aux_loss_coef = 0.0;
  double initializer_range = 0.02;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_id;  // HF allows one id or a list (Llama 3.1)

  nlohmann::json extra = nlohmann::json::object();  // every key forma does not interpret
  std::string source;                               // file it came from (for error messages)

  // Where layers differ (HF layer_types: sliding and full attention layers), which ones use the
  // sliding window; empty: every layer uses effective_sliding_window().
  std::vector<bool> sliding_layers;

  // The window forma applies to every layer: 0 when attention is full-causal.
  int64_t effective_sliding_window() const;
  // The window of one layer (0: full causal).
  int64_t layer_window(int64_t layer) const;
  bool is_moe() const { return num_local_experts > 0; }
  // Whether layer `layer` holds the sparse block (else the dense MLP).
  bool layer_is_sparse(int64_t layer) const {
    return is_moe() && (sparse_layers.empty() || sparse_layers.at(static_cast<size_t>(layer)));
  }
  // HF's int(head_dim * partial_rotary_factor).
  int64_t rotary_dim() const { return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor); }
};

// Parses a config.json object; `source` names it in errors. Throws forma::Error naming the source
// and field for an unknown model_type, a wrong type or an invalid value.
ModelConfig parse_model_config(const nlohmann::json& json, const std::string& source);

// Accepts a config.json path, a model folder (reads its config.json), or a preset name from
// configs/models (e.g. "llama-2-7b", "tiny-llama").
ModelConfig load_model_config(const std::string& path_or_dir_or_preset);

// The HF config.json for `config` (GPT-2 under its own field names), extra keys merged back.
nlohmann::json to_hf_json(const ModelConfig& config);

// Where presets live: $FORMA_CONFIG_DIR, else the first configs/models found walking up from the
// executable's folder or the working folder. Empty when none is found.
std::string presets_dir();

}  // namespace forma
