// OLMo 2: Llama's attention and SiLU-gated MLP in a post-norm layer (x + norm(attn(x)), then
// x + norm(mlp(x)); no input norm), with RMSNorms over the whole q and k projections (every head
// at once, before the split into heads and RoPE), untied embeddings.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::olmo2 {

// configuration_olmo2.py's defaults (bos null, eos 50279).
constexpr StandardDefaults kDefaults{50304, 4096, 11008, 32, 32, 0, "silu", 2048, 1e-5, 1e4, 0, -1, 50279, false};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.post_block_norms = true;
  c.pre_block_norms = false;
  c.qk_norm_whole = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["attention_bias"] = c.attention_bias;
}

}  // namespace forma::arch::olmo2

namespace forma {

extern const Architecture kOlmo2{.model_type = "olmo2",
                                 .hf_class = "Olmo2ForCausalLM",
                                 .read_config = arch::olmo2::read,
                                 .write_config = arch::olmo2::write,
                                 .qkv_bias = if_attention_bias,
                                 .o_bias = if_attention_bias,
                                 .mlp_bias = never};

}  // namespace forma
