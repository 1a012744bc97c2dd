// Qwen3 (dense): Llama's layer with an RMSNorm over head_dim on every query and key head before
// RoPE (q_norm, k_norm), head_dim independent of hidden_size, attention_bias on q/k/v/o, and Qwen2's
// sliding-window rules.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

namespace forma::arch::qwen3 {

constexpr StandardDefaults kDefaults{151936, 4096, 22016, 32, 32, 32, "silu", 32768, 1e-6, 1e4, 4096, -1, -1, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  if (!original.contains("head_dim")) c.head_dim = 128;  // Qwen3Config's default, not hidden / heads
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.sliding_window = r.optional_integer("sliding_window", kDefaults.sliding_window);
  c.use_sliding_window = r.boolean("use_sliding_window", false);
  read_sliding_layers(original, c);
  c.qk_norm = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
  write_sliding_window(c, j);
  j["use_sliding_window"] = c.use_sliding_window;
}

}  // namespace forma::arch::qwen3

namespace forma {

extern const Architecture kQwen3{.model_type = "qwen3",
                                 .hf_class = "Qwen3ForCausalLM",
                                 .read_config = arch::qwen3::read,
                                 .write_config = arch::qwen3::write,
                                 .qkv_bias = if_attention_bias,
                                 .o_bias = if_attention_bias,
                                 .mlp_bias = never};

}  // namespace forma
