// Gemma 3, text only (Gemma3ForCausalLM, model_type gemma3_text): Gemma 2's layer (sandwich norms,
// RMSNorms scaling by 1 + weight, sqrt(hidden) embedding scale, tanh GeGLU, query_pre_attn_scalar)
// with a per-head q/k RMSNorm, no soft-caps by default, five sliding-window layers per global one,
// and two RoPEs: the sliding layers' local one (rope_local_base_freq, 1e4, unscaled) and the global
// layers' (rope_theta 1e6 with any rope_scaling).
#include <cmath>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gemma3 {

// configuration_gemma3.py's Gemma3TextConfig defaults (the 4B's text sizes; bos 2, eos 1).
constexpr StandardDefaults kDefaults{262208, 2304, 9216, 26, 8, 4, "gelu_pytorch_tanh", 131072, 1e-6, 1e6, 4096, 2, 1, true};
constexpr double kLocalTheta = 1e4;  // rope_local_base_freq's default

// The RoPE of each layer type. transformers 4: rope_theta + rope_scaling for the global layers,
// rope_local_base_freq for the sliding ones; transformers 5: rope_parameters holding one object
// per layer type. The local RoPE must be unscaled (HF allows more; forma refuses it by name).
void read_ropes(const nlohmann::json& parameters, FieldReader& r, ModelConfig& c) {
  c.local_rope_theta = r.number("rope_local_base_freq", kLocalTheta);
  if (parameters.is_null()) return;
  check(parameters.is_object(), "{}: field 'rope_parameters' must be an object or null", c.source);
  const bool per_type = parameters.contains("full_attention") || parameters.contains("sliding_attention");
  if (!per_type) {  // one object: the global layers' (as rope_scaling)
    read_rope_object(parameters, "rope_parameters", false, c);
    return;
  }
  if (parameters.contains("full_attention") && !parameters["full_attention"].is_null()) {
    read_rope_object(parameters["full_attention"], "rope_parameters.full_attention", false, c);
  }
  if (parameters.contains("sliding_attention") && !parameters["sliding_attention"].is_null()) {
    ModelConfig local;
    local.source = c.source;
    local.rope_theta = c.local_rope_theta;
    read_rope_object(parameters["sliding_attention"], "rope_parameters.sliding_attention", false, local);
    check(!local.rope_scaling, "{}: field 'rope_parameters.sliding_attention.rope_type' ({}): only the default "
          "(unscaled) RoPE is supported on sliding layers", c.source, local.rope_scaling ? local.rope_scaling->rope_type : "");
    c.local_rope_theta = local.rope_theta;
  }
  for (const auto& [key, value] : parameters.items()) {
    check(key == "full_attention" || key == "sliding_attention",
          "{}: field 'rope_parameters.{}': expected full_attention and sliding_attention", c.source, key);
  }
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  // Taken first: read_standard_fields would read it as one flat object.
  const nlohmann::json rope_parameters = r.take("rope_parameters");
  read_standard_fields(r, kDefaults, c);
  read_ropes(rope_parameters, r, c);
  check(c.local_rope_theta > 0, "{}: field 'rope_local_base_freq' must be positive", c.source);
  if (!original.contains("head_dim")) c.head_dim = 256;  // Gemma3TextConfig's default
  // The MLP reads hidden_activation; a hidden_act next to it is ignored by HF.
  c.hidden_act = r.string("hidden_activation", kDefaults.hidden_act);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.sliding_window = r.optional_integer("sliding_window", kDefaults.sliding_window);
  // HF's default pattern: every sliding_window_pattern-th layer global (read, not taken).
  int64_t pattern = 6;
  if (original.contains("sliding_window_pattern") && original["sliding_window_pattern"].is_number_integer()) {
    pattern = original["sliding_window_pattern"].get<int64_t>();
  }
  check(pattern > 0, "{}: field 'sliding_window_pattern' ({}) must be positive", c.source, pattern);
  const int64_t sliding = read_layer_types(original, pattern, c);
  // A sliding layer without a window would still take the local RoPE: forma ties the two.
  check(sliding == 0 || c.sliding_window, "{}: field 'sliding_window': null with sliding_attention layers is "
        "not supported", c.source);
  c.attn_logit_softcapping = read_softcap(r, original, "attn_logit_softcapping", 0.0, c);
  c.final_logit_softcapping = read_softcap(r, original, "final_logit_softcapping", 0.0, c);
  c.attention_scale = read_query_pre_attn_scalar(original, c);
  const nlohmann::json bidirectional = r.take("use_bidirectional_attention");
  check(bidirectional.is_null() || bidirectional == false,
        "{}: field 'use_bidirectional_attention' ({}): bidirectional attention is not supported", c.source,
        bidirectional.dump());
  c.norm_weight_offset = true;
  c.scale_embeddings = true;
  c.post_block_norms = true;
  c.qk_norm = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);  // rope_theta + rope_scaling: the global layers'
  j["rope_local_base_freq"] = c.local_rope_theta;
  j["hidden_activation"] = c.hidden_act;
  j["attention_bias"] = c.attention_bias;
  write_sliding_window(c, j);
  write_softcaps(c, j);
}

}  // namespace forma::arch::gemma3

namespace forma {

extern const Architecture kGemma3Text{.model_type = "gemma3_text",
                                      .hf_class = "Gemma3ForCausalLM",
                                      .read_config = arch::gemma3::read,
                                      .write_config = arch::gemma3::write,
                                      .qkv_bias = if_attention_bias,
                                      .o_bias = if_attention_bias,
                                      .mlp_bias = never};

}  // namespace forma
