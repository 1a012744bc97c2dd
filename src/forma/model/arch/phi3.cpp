// Phi-3 / Phi-3.5 / Phi-4-mini: Llama's layer with one fused qkv_proj ([q | k | v] rows, k and v
// narrower under grouped-query attention) and one fused gate_up_proj ([gate | up] rows), an
// optional sliding window, and LongRoPE for the long-context checkpoints (rope_scaling "longrope",
// which older configs call "su" or "yarn"; config.h RopeScaling).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::phi3 {

// Phi3Config's defaults (Phi-3-mini-4k).
constexpr StandardDefaults kDefaults{32064, 3072, 8192, 32,    32,   0,     "silu", 4096, 1e-5, 1e4,
                                     0,     1,    32000, false, "rms_norm_eps", true};

std::vector<int64_t> qkv_rows(const ModelConfig& c) {
  return {c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim, c.num_key_value_heads * c.head_dim};
}

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string a = "model.layers.{L}.self_attn.", m = "model.layers.{L}.mlp.";
  return {{a + "qkv_proj.weight", {a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"}, false, 0, qkv_rows},
          {m + "gate_up_proj.weight", {m + "gate_proj.weight", m + "up_proj.weight"}, false, 0}};
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  // Phi3Config reads the "su" and "yarn" kinds of older checkpoints as longrope.
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!original.contains(key) || !original[key].is_object()) continue;
    nlohmann::json rope = r.take(key);
    for (const char* kind : {"rope_type", "type"}) {
      if (rope.contains(kind) && (rope[kind] == "su" || rope[kind] == "yarn")) rope[kind] = "longrope";
    }
    nlohmann::json rest = r.rest();
    rest[key] = rope;
    r = FieldReader(rest, r.source());
  }
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.sliding_window = r.optional_integer("sliding_window", std::nullopt);
  // The pretraining length, LongRoPE's switch point: Phi3Config's own field (default 4096) always
  // overrides the one inside rope_scaling (HF's standardize_rope_params). It stays in extra.
  FieldReader peek(original, r.source());
  const int64_t original_max = peek.integer("original_max_position_embeddings", 4096);
  if (c.rope_scaling) c.rope_scaling->original_max_position_embeddings = original_max;
  check(!c.rope_scaling || c.rope_scaling->rope_type == "longrope",
        "{}: field 'rope_scaling.rope_type': '{}' is not a Phi-3 RoPE (default or longrope)", c.source,
        c.rope_scaling ? c.rope_scaling->rope_type : "");
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  write_sliding_window(c, j);
}

}  // namespace forma::arch::phi3

namespace forma {

extern const Architecture kPhi3{.model_type = "phi3",
                                .hf_class = "Phi3ForCausalLM",
                                .read_config = arch::phi3::read,
                                .write_config = arch::phi3::write,
                                .weight_rules = arch::phi3::rules,
                                .qkv_bias = never,
                                .o_bias = never,
                                .mlp_bias = never};

}  // namespace forma
