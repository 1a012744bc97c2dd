// Gemma 2: Gemma's layer (RMSNorms scaling by 1 + weight, sqrt(hidden) embedding scale, tanh GeGLU,
// tied embeddings) with sandwich norms (each block's output normed before its residual add),
// tanh soft-caps on the attention scores and on the logits, a softmax scale from
// query_pre_attn_scalar instead of head_dim, and sliding-window layers alternating with global ones.
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

// Named, not anonymous: the unity build compiles several specs in one translation unit.
namespace forma::arch::gemma2 {

// configuration_gemma2.py's defaults (the 2B's sizes; bos 2, eos 1 as HF has them).
constexpr StandardDefaults kDefaults{256000, 2304, 9216, 26, 8, 4, "gelu_pytorch_tanh", 8192, 1e-6, 1e4, 4096, 2, 1, true};

void read(FieldReader& r, const nlohmann::json& original, ModelConfig& c) {
  read_standard_fields(r, kDefaults, c);
  if (!original.contains("head_dim")) c.head_dim = 256;  // Gemma2Config's default, not hidden / heads
  // Gemma2's MLP reads hidden_activation; a hidden_act next to it (older configs) is ignored by HF.
  c.hidden_act = r.string("hidden_activation", kDefaults.hidden_act);
  read_special_tokens(r, original, kDefaults.bos, kDefaults.eos, c);
  c.attention_bias = r.boolean("attention_bias", false);
  c.sliding_window = r.optional_integer("sliding_window", kDefaults.sliding_window);
  read_layer_types(original, /*pattern=*/2, c);  // HF's default: even layers slide, odd ones are global
  c.attn_logit_softcapping = read_softcap(r, original, "attn_logit_softcapping", 50.0, c);
  c.final_logit_softcapping = read_softcap(r, original, "final_logit_softcapping", 30.0, c);
  c.attention_scale = read_query_pre_attn_scalar(original, c);
  const nlohmann::json bidirectional = r.take("use_bidirectional_attention");
  check(bidirectional.is_null() || bidirectional == false,
        "{}: field 'use_bidirectional_attention' ({}): bidirectional attention is not supported", c.source,
        bidirectional.dump());
  c.norm_weight_offset = true;
  c.scale_embeddings = true;
  c.post_block_norms = true;
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_standard_fields(c, kDefaults, j);
  j["hidden_activation"] = c.hidden_act;
  j["attention_bias"] = c.attention_bias;
  write_sliding_window(c, j);
  write_softcaps(c, j);
}

}  // namespace forma::arch::gemma2

namespace forma {

extern const Architecture kGemma2{.model_type = "gemma2",
                                  .hf_class = "Gemma2ForCausalLM",
                                  .read_config = arch::gemma2::read,
                                  .write_config = arch::gemma2::write,
                                  .qkv_bias = if_attention_bias,
                                  .o_bias = if_attention_bias,
                                  .mlp_bias = never};

}  // namespace forma
