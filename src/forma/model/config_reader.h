// Reading an HF config.json field by field: each architecture's spec (arch/*.cpp) reads its own
// fields through a FieldReader, which removes what it reads so that the rest becomes
// ModelConfig::extra (kept for the round trip), and names the file and field in every error.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "forma/core/error.h"
#include "forma/model/config.h"

namespace forma {

// Reads fields out of a JSON object, removing each one it reads so that the rest becomes `extra`.
class FieldReader {
 public:
  FieldReader(nlohmann::json object, std::string source) : rest_(std::move(object)), source_(std::move(source)) {}

  bool has(const char* key) const { return rest_.contains(key) && !rest_[key].is_null(); }

  int64_t integer(const char* key, int64_t fallback) {
    nlohmann::json v = take(key);
    if (v.is_null()) return fallback;
    // HF writes some integers as 8.0 in hand-edited files; accept whole floats.
    // (Within int64's range: converting a larger double is undefined behaviour.)
    if (v.is_number_float()) {
      double x = v.get<double>();
      if (x >= -0x1p63 && x < 0x1p63 && x == std::trunc(x)) return static_cast<int64_t>(x);
    }
    check(v.is_number_integer(), "{}: field '{}' must be an integer, got {}", source_, key, v.dump());
    // JSON's unsigned integers above int64's range would wrap to negative values.
    check(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()},
          "{}: field '{}' ({}) is too large", source_, key, v.dump());
    return v.get<int64_t>();
  }
  std::optional<int64_t> optional_integer(const char* key, std::optional<int64_t> fallback) {
    if (rest_.contains(key) && rest_[key].is_null()) {
      take(key);
      return std::nullopt;
    }
    if (!rest_.contains(key)) return fallback;
    return integer(key, 0);
  }
  double number(const char* key, double fallback) {
    nlohmann::json v = take(key);
    if (v.is_null()) return fallback;
    check(v.is_number(), "{}: field '{}' must be a number, got {}", source_, key, v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    nlohmann::json v = take(key);
    if (v.is_null()) return fallback;
    check(v.is_boolean(), "{}: field '{}' must be true or false, got {}", source_, key, v.dump());
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) {
    nlohmann::json v = take(key);
    if (v.is_null()) return fallback;
    check(v.is_string(), "{}: field '{}' must be a string, got {}", source_, key, v.dump());
    return v.get<std::string>();
  }
  nlohmann::json take(const char* key) {
    if (!rest_.contains(key)) return nlohmann::json();
    nlohmann::json v = rest_[key];
    rest_.erase(key);
    return v;
  }
  nlohmann::json rest() const { return rest_; }
  const std::string& source() const { return source_; }

 private:
  nlohmann::json rest_;
  std::string source_;
};

// HF's defaults for the fields most decoder-only configs share (hidden_size, num_attention_heads,
// rms_norm_eps, rope_theta ...), per model_type, from its configuration_*.py.
struct StandardDefaults {
  int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
  int64_t num_key_value_heads;  // 0: same as num_attention_heads
  const char* hidden_act;
  int64_t max_position_embeddings;
  double norm_eps, rope_theta;
  int64_t sliding_window;  // 0: null
  int64_t bos, eos;        // -1: null
  bool tie_word_embeddings;
  const char* norm_eps_key = "rms_norm_eps";
  bool partial_rotary = false;  // partial_rotary_factor != 1 accepted (the spec supports it), else refused
};

// Reads the shared fields under HF's usual names: sizes, heads, head_dim, hidden_act, positions,
// the norm epsilon (defaults.norm_eps_key), RoPE in both spellings (transformers 4's rope_theta +
// rope_scaling, transformers 5's rope_parameters), sliding_window, tie_word_embeddings, bos/eos,
// partial_rotary_factor (top level in transformers 4, inside rope_parameters in transformers 5).
void read_standard_fields(FieldReader& r, const StandardDefaults& d, ModelConfig& c);
// Writes them back (transformers 4 spelling of RoPE, which transformers 5 reads too).
void write_standard_fields(const ModelConfig& c, const StandardDefaults& d, nlohmann::json& j);

// GPT-2's field names (n_embd, n_layer, n_head, n_positions, n_inner (null: 4 x n_embd),
// activation_function, layer_norm_epsilon), which GPT-BigCode shares; every linear biased.
struct Gpt2StyleDefaults {
  int64_t vocab_size, n_embd, n_layer, n_head, n_positions;
  const char* activation_function;
  double layer_norm_epsilon;
  int64_t bos, eos;
};
void read_gpt2_style_fields(FieldReader& r, const nlohmann::json& original, const Gpt2StyleDefaults& d, ModelConfig& c);
void write_gpt2_style_fields(const ModelConfig& c, nlohmann::json& j);

// Which layers slide when use_sliding_window is true and the config has no layer_types: Qwen2's and
// Qwen3's from max_window_layers on; Qwen2-MoE's the even layers below max_window_layers (HF's
// Qwen2MoeConfig: (i + 1) % 2 and i < max_window_layers).
enum class SlidingLayersRule { FromMaxWindowLayers, EvenBelowMaxWindowLayers };

// Qwen's sliding layers: layer_types where the config has it (transformers 5), else `rule` (when
// use_sliding_window). Sets use_sliding_window from them, and ModelConfig::sliding_layers where
// some layers slide and others do not.
void read_sliding_layers(const nlohmann::json& original, ModelConfig& c,
                         SlidingLayersRule rule = SlidingLayersRule::FromMaxWindowLayers);

// Qwen2-MoE/Qwen3-MoE's dense layers: layer i holds the sparse block unless it is listed in
// mlp_only_layers or (i + 1) % decoder_sparse_step != 0 (HF's rule). Sets ModelConfig::sparse_layers
// where some layers are dense; both fields are read, not taken (they stay in extra). The writer puts
// them back from sparse_layers when extra does not hold them.
void read_sparse_layers(const nlohmann::json& original, ModelConfig& c);
void write_sparse_layers(const ModelConfig& c, nlohmann::json& j);

// One RoPE object (transformers 4's rope_scaling, transformers 5's rope_parameters) into
// c.rope_theta, c.rope_scaling and c.partial_rotary_factor; `where` names it in errors.
void read_rope_object(const nlohmann::json& j, const std::string& where, bool partial_rotary, ModelConfig& c);

// Gemma 2/3's sliding layers: layer_types (read, not taken: it stays in `extra`) where the config has
// it, else HF's pattern (layer i slides unless (i + 1) % pattern == 0). Sets use_sliding_window and,
// where layers differ, ModelConfig::sliding_layers. Returns how many layer types say sliding.
int64_t read_layer_types(const nlohmann::json& original, int64_t pattern, ModelConfig& c);

// A tanh soft-cap (Gemma 2/3): an absent key takes `fallback`, null switches it off (0).
double read_softcap(FieldReader& r, const nlohmann::json& original, const char* key, double fallback,
                    const ModelConfig& c);

// Writes both soft-caps back, 0 as null.
void write_softcaps(const ModelConfig& c, nlohmann::json& j);

// The routed experts of Qwen-MoE and OLMoE configs: num_experts (transformers 5 may write
// num_local_experts: either reads the other), num_experts_per_tok, router_aux_loss_coef and
// norm_topk_prob (moe_renormalize, false unless given), with each family's defaults.
struct MoeDefaults {
  int64_t num_experts, experts_per_token;
  double router_aux_loss_coef;
};
void read_moe_fields(FieldReader& r, const MoeDefaults& d, ModelConfig& c);
// Writes them back under transformers 4's names (num_experts, which 5 reads too).
void write_moe_fields(const ModelConfig& c, nlohmann::json& j);

// OLMo's clip_qkv: a positive number or null (no clamp), read into ModelConfig::clip_qkv; and back.
void read_clip_qkv(FieldReader& r, ModelConfig& c);
void write_clip_qkv(const ModelConfig& c, nlohmann::json& j);

// Writes rope_scaling back (transformers 4's spelling, which 5 reads too): every scaling kind's
// fields, or null.
void write_rope_scaling(const ModelConfig& c, nlohmann::json& j);

// Writes sliding_window back: the window, or null for full attention.
void write_sliding_window(const ModelConfig& c, nlohmann::json& j);

// Gemma 2/3's attention scale query_pre_attn_scalar ** -0.5 (default scalar 256; read, not taken).
double read_query_pre_attn_scalar(const nlohmann::json& original, const ModelConfig& c);

// bos/eos: an absent key takes the default, an explicit null stays null.
void read_special_tokens(FieldReader& r, const nlohmann::json& original, int64_t bos, int64_t eos, ModelConfig& c);
void write_special_tokens(const ModelConfig& c, nlohmann::json& j);

}  // namespace forma
