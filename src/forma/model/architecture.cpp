#include "forma/model/architecture.h"

#include "forma/core/error.h"

namespace forma {

// One spec per architecture, each in src/forma/model/arch/<type>.cpp.
extern const Architecture kLlama, kMistral, kQwen2, kQwen3, kMixtral, kGpt2, kGptBigcode, kStarcoder2, kGemma;
extern const Architecture kPhi, kPhi3, kStableLm, kGptj, kGptNeox;
extern const Architecture kGranite, kOlmo, kNemotron, kQwen3Moe;
extern const Architecture kGemma2, kOlmo2, kGemma3Text, kCohere, kGlm, kGlm4;
extern const Architecture kOlmoe, kQwen2Moe, kFalcon, kBloom, kDeepseekV2, kDeepseekV3;

const std::vector<const Architecture*>& all_architectures() {
  static const std::vector<const Architecture*> registry = {&kLlama,   &kMistral,    &kQwen2,       &kQwen3, &kMixtral,
                                                            &kGpt2,    &kGptBigcode, &kStarcoder2, &kGemma, &kPhi, &kPhi3,
                                                            &kStableLm, &kGranite, &kOlmo, &kNemotron,
                                                            &kQwen3Moe, &kGptj, &kGptNeox, &kGemma2,
                                                            &kOlmo2, &kGemma3Text, &kCohere, &kGlm, &kGlm4,
                                                            &kOlmoe, &kQwen2Moe, &kFalcon, &kBloom, &kDeepseekV2, &kDeepseekV3};
  return registry;
}

const Architecture& architecture_named(const std::string& model_type, const std::string& source) {
  std::string known;
  for (const Architecture* a : all_architectures()) {
    if (a->model_type == model_type) return *a;
    known += (known.empty() ? "" : ", ") + std::string(a->model_type);
  }
  fail("{}: field 'model_type': unknown model type '{}' (forma knows {})", source, model_type, known);
}

const Architecture& architecture_for(const ModelConfig& config) {
  return architecture_named(config.model_type, config.source);
}

bool always(const ModelConfig&) { return true; }
bool never(const ModelConfig&) { return false; }
bool if_attention_bias(const ModelConfig& c) { return c.attention_bias; }
bool if_mlp_bias(const ModelConfig& c) { return c.mlp_bias; }

}  // namespace forma
