// Granite (IBM Granite 3.x dense): Llama's layer with four scalars (muP-style): embeddings times
// embedding_multiplier, each block's output times residual_multiplier before the residual add,
// attention_multiplier as the softmax scale of q.k (in place of 1/sqrt(head_dim)), and logits
// divided by logits_scaling.
#include <cmath>

#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::granite {

// GraniteConfig's defaults (configuration_granite.py).
constexpr StandardDefaults kDefaults{32000, 4096, 11008, 32, 32, 0, "silu", 2048, 1e-6, 1e4, 0, 1, 2, false};

double positive(FieldReader& r, const ModelConfig& c, const char* key) {
  const double value = r.number(key, 1.0);  // every multiplier defaults to 1 in GraniteConfig
  check(std::isfinite(value) && value > 0, "{}: field '{}' ({}) must be a positive number", c.source, key, value);
  return value;
}

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.mlp_bias = r.boolean("mlp_bias", false);
  c.embedding_multiplier = positive(r, c, "embedding_multiplier");
  c.residual_multiplier = positive(r, c, "residual_multiplier");
  // HF's default attention_multiplier is 1.0 itself, not 1/sqrt(head_dim).
  c.attention_scale = positive(r, c, "attention_multiplier");
  c.logit_scale = 1.0 / positive(r, c, "logits_scaling");
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
  j["mlp_bias"] = c.mlp_bias;
  j["embedding_multiplier"] = c.embedding_multiplier;
  j["residual_multiplier"] = c.residual_multiplier;
  j["attention_multiplier"] =
      c.attention_scale > 0 ? c.attention_scale : 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  j["logits_scaling"] = 1.0 / c.logit_scale;
}

}  // namespace forma::arch::granite

namespace forma {

extern const Architecture kGranite{.model_type = "granite",
                                   .hf_class = "GraniteForCausalLM",
                                   .read_config = arch::granite::read,
                                   .write_config = arch::granite::write,
                                   .qkv_bias = if_attention_bias,
                                   .o_bias = if_attention_bias,
                                   .mlp_bias = if_mlp_bias};

}  // namespace forma
