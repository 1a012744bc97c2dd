// Gemma (1): Llama's layer with RMSNorms that scale by (1 + weight), embeddings multiplied by
// sqrt(hidden_size), a GeGLU MLP (tanh GELU), head_dim independent of hidden_size (256 by
// default), multi-query attention in the 2B, and tied embeddings.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gemma {

// configuration_gemma.py's defaults (the 7B's sizes; bos 2, eos 1 as HF has them).
constexpr StandardDefaults kDefaults{256000, 3072, 24576, 28, 16, 16, "gelu_pytorch_tanh", 8192, 1e-6, 1e4, 0, 2, 1, true};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  if (!original.contains("head_dim")) c.head_dim = 256;  // GemmaConfig's default, not hidden / heads
  // The published checkpoints say "gelu" but were trained with the tanh approximation: HF's
  // GemmaConfig rewrites it, and so does forma.
  if (c.hidden_act == "gelu") c.hidden_act = "gelu_pytorch_tanh";
  // transformers 4 read hidden_activation in preference to hidden_act (5 ignores it; it stays in
  // extra for the round trip): a config where the two disagree has no single meaning.
  if (original.contains("hidden_activation") && !original["hidden_activation"].is_null()) {
    const nlohmann::json& activation = original["hidden_activation"];
    check(activation.is_string() && activation.get<std::string>() == c.hidden_act,
          "{}: field 'hidden_activation' ({}) disagrees with hidden_act '{}'", c.source, activation.dump(),
          c.hidden_act);
  }
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  const nlohmann::json bidirectional = r.take("use_bidirectional_attention");
  check(bidirectional.is_null() || bidirectional == false,
        "{}: field 'use_bidirectional_attention' ({}): bidirectional attention is not supported", c.source,
        bidirectional.dump());
  c.norm_weight_offset = true;
  c.scale_embeddings = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
}

}  // namespace forma::arch::gemma

namespace forma {

extern const Architecture kGemma{.model_type = "gemma",
                                 .hf_class = "GemmaForCausalLM",
                                 .read_config = arch::gemma::read,
                                 .write_config = arch::gemma::write,
                                 .qkv_bias = if_attention_bias,
                                 .o_bias = if_attention_bias,
                                 .mlp_bias = never};

}  // namespace forma
