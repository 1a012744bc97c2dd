// Qwen2 / Qwen2.5: Llama's layer with biased q/k/v (o never), and a sliding window that applies
// only when use_sliding_window is true, to the layers HF makes slide: layer_types where the config
// has it (transformers 5), else the layers from max_window_layers on.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::qwen2 {

constexpr StandardDefaults kDefaults{151936, 4096, 22016, 32, 32, 32, "silu", 32768, 1e-6, 1e4, 4096, -1, -1, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", true);
  c.sliding_window = r.optional_integer("sliding_window", kDefaults.sliding_window);
  c.use_sliding_window = r.boolean("use_sliding_window", false);
  read_sliding_layers(original, c);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  write_sliding_window(c, j);
  j["use_sliding_window"] = c.use_sliding_window;
}

}  // namespace forma::arch::qwen2

namespace forma {

extern const Architecture kQwen2{.model_type = "qwen2",
                                 .hf_class = "Qwen2ForCausalLM",
                                 .read_config = arch::qwen2::read,
                                 .write_config = arch::qwen2::write,
                                 .qkv_bias = always,
                                 .o_bias = never,
                                 .mlp_bias = never};

}  // namespace forma
