// Mistral: Llama's layer with a sliding attention window (sliding_window, null for full).
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::mistral {

constexpr StandardDefaults kDefaults{32000, 4096, 14336, 32, 32, 8, "silu", 4096 * 32, 1e-6, 1e4, 4096, 1, 2, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.sliding_window = r.optional_integer("sliding_window", kDefaults.sliding_window);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  write_sliding_window(c, j);
}

}  // namespace forma::arch::mistral

namespace forma {

extern const Architecture kMistral{.model_type = "mistral",
                                   .hf_class = "MistralForCausalLM",
                                   .read_config = arch::mistral::read,
                                   .write_config = arch::mistral::write,
                                   .qkv_bias = never,
                                   .o_bias = never,
                                   .mlp_bias = never};

}  // namespace forma
