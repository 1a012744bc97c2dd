// StarCoder2: LayerNorm with bias (norm_epsilon), RoPE, grouped-query attention with a sliding
// window, a GELU (tanh) MLP without a gate named c_fc / c_proj, and use_bias on every linear but
// lm_head. The dropouts of its config are training-only noise forma does not apply (kept in extra).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

namespace forma::arch::starcoder2 {

constexpr StandardDefaults kDefaults{.vocab_size = 49152,
                                     .hidden_size = 3072,
                                     .intermediate_size = 12288,
                                     .num_hidden_layers = 30,
                                     .num_attention_heads = 24,
                                     .num_key_value_heads = 2,
                                     .hidden_act = "gelu_pytorch_tanh",
                                     .max_position_embeddings = 4096,
                                     .norm_eps = 1e-5,
                                     .rope_theta = 1e4,
                                     .sliding_window = 0,
                                     .bos = 50256,
                                     .eos = 50256,
                                     .tie_word_embeddings = true,
                                     .norm_eps_key = "norm_epsilon"};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  if (!original.contains("initializer_range")) c.initializer_range = 0.018042;  // Starcoder2Config's
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = c.mlp_bias = r.boolean("use_bias", true);
  c.sliding_window = r.optional_integer("sliding_window", std::nullopt);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["use_bias"] = c.attention_bias;
  write_sliding_window(c, j);
}

std::vector<WeightRule> rules(const ModelConfig&) {
  const std::string m = "model.layers.{L}.mlp.";
  return {{m + "c_fc.weight", {m + "up_proj.weight"}},
          {m + "c_fc.bias", {m + "up_proj.bias"}},
          {m + "c_proj.weight", {m + "down_proj.weight"}},
          {m + "c_proj.bias", {m + "down_proj.bias"}}};
}

}  // namespace forma::arch::starcoder2

namespace forma {

extern const Architecture kStarcoder2{.model_type = "starcoder2",
                                      .hf_class = "Starcoder2ForCausalLM",
                                      .norm = NormKind::LayerNorm,
                                      .gated_mlp = false,
                                      .read_config = arch::starcoder2::read,
                                      .write_config = arch::starcoder2::write,
                                      .weight_rules = arch::starcoder2::rules,
                                      .qkv_bias = if_attention_bias,
                                      .o_bias = if_attention_bias,
                                      .mlp_bias = if_mlp_bias};

}  // namespace forma
