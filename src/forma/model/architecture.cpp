#include "forma/model/architecture.h"

#include "forma/core/error.h"

namespace forma {

namespace {

StateDict identity(const StateDict& state, const ModelConfig&) { return state; }

// GPT-2 names per layer: HF suffix after "transformer.h.N." -> forma suffix after
// "model.layers.N.", and whether HF stores it as a Conv1D [in, out] weight (transposed).
struct Gpt2Rule {
  const char* hf;
  const char* forma;
  bool conv1d;
};

constexpr Gpt2Rule kGpt2LayerRules[] = {
    {"ln_1.weight", "input_layernorm.weight", false},
    {"ln_1.bias", "input_layernorm.bias", false},
    {"attn.c_proj.weight", "self_attn.o_proj.weight", true},
    {"attn.c_proj.bias", "self_attn.o_proj.bias", false},
    {"ln_2.weight", "post_attention_layernorm.weight", false},
    {"ln_2.bias", "post_attention_layernorm.bias", false},
    {"mlp.c_fc.weight", "mlp.up_proj.weight", true},
    {"mlp.c_fc.bias", "mlp.up_proj.bias", false},
    {"mlp.c_proj.weight", "mlp.down_proj.weight", true},
    {"mlp.c_proj.bias", "mlp.down_proj.bias", false},
};

constexpr Gpt2Rule kGpt2GlobalRules[] = {
    {"transformer.wte.weight", "model.embed_tokens.weight", false},
    {"transformer.wpe.weight", "model.embed_positions.weight", false},
    {"transformer.ln_f.weight", "model.norm.weight", false},
    {"transformer.ln_f.bias", "model.norm.bias", false},
    {"lm_head.weight", "lm_head.weight", false},
};

// The fused c_attn: weight [in, 3*out] with columns [q | k | v], bias [3*out].
constexpr const char* kQkv[] = {"q_proj", "k_proj", "v_proj"};

StateDict gpt2_from_hf(const StateDict& hf_in, const ModelConfig& config) {
  // Checkpoints saved from GPT2Model (the official ones) lack the "transformer." prefix and carry
  // the causal-mask buffers attn.bias / attn.masked_bias, which are not weights.
  StateDict hf;
  for (const auto& [name, t] : hf_in) {
    bool is_mask = name.size() > 9 && (name.rfind(".attn.bias") == name.size() - 10 ||
                                       name.rfind(".attn.masked_bias") == name.size() - 17);
    if (is_mask) continue;
    bool bare = name.rfind("transformer.", 0) != 0 && name.rfind("lm_head.", 0) != 0;
    hf[bare ? "transformer." + name : name] = t;
  }
  // Views (transposes, slices), not copies: the loader copies them into the parameters block by
  // block, so that a memory-mapped checkpoint is never held twice.
  StateDict out;
  auto move = [&](const std::string& from, const std::string& to, bool conv1d) {
    auto it = hf.find(from);
    if (it == hf.end()) return;
    out[to] = conv1d ? it->second.t() : it->second;
    hf.erase(it);
  };
  for (const auto& r : kGpt2GlobalRules) move(r.hf, r.forma, r.conv1d);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string h = "transformer.h." + std::to_string(i) + ".";
    std::string f = "model.layers." + std::to_string(i) + ".";
    for (const auto& r : kGpt2LayerRules) move(h + r.hf, f + r.forma, r.conv1d);
    for (const char* kind : {"weight", "bias"}) {
      auto it = hf.find(h + "attn.c_attn." + kind);
      if (it == hf.end()) continue;
      // weight [in, 3*out] -> three [out, in]; bias [3*out] -> three [out]
      auto parts = it->second.chunk(3, /*dim=*/-1);
      for (int p = 0; p < 3; ++p) {
        out[f + "self_attn." + kQkv[p] + "." + kind] = std::string(kind) == "weight" ? parts[p].t() : parts[p];
      }
      hf.erase(it);
    }
  }
  for (const auto& [name, t] : hf) out[name] = t;  // unknown: left for the loader to report
  return out;
}

StateDict gpt2_to_hf(const StateDict& forma_in, const ModelConfig& config) {
  StateDict f = forma_in;
  StateDict out;
  auto move = [&](const std::string& from, const std::string& to, bool conv1d) {
    auto it = f.find(from);
    if (it == f.end()) return;
    out[to] = conv1d ? it->second.t().contiguous() : it->second;
    f.erase(it);
  };
  for (const auto& r : kGpt2GlobalRules) move(r.forma, r.hf, r.conv1d);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string h = "transformer.h." + std::to_string(i) + ".";
    std::string m = "model.layers." + std::to_string(i) + ".";
    for (const auto& r : kGpt2LayerRules) move(m + r.forma, h + r.hf, r.conv1d);
    for (std::string kind : {"weight", "bias"}) {
      std::vector<torch::Tensor> parts;
      for (const char* p : kQkv) {
        auto it = f.find(m + "self_attn." + p + "." + kind);
        if (it == f.end()) break;
        parts.push_back(kind == "weight" ? it->second.t() : it->second);
        f.erase(it);
      }
      if (parts.size() == 3) out[h + "attn.c_attn." + kind] = torch::cat(parts, -1).contiguous();
    }
  }
  for (const auto& [name, t] : f) out[name] = t;
  return out;
}

const Architecture kArchitectures[] = {
    {"llama", NormKind::RMSNorm, PositionKind::Rope, true, identity, identity},
    {"mistral", NormKind::RMSNorm, PositionKind::Rope, true, identity, identity},
    {"qwen2", NormKind::RMSNorm, PositionKind::Rope, true, identity, identity},
    {"mixtral", NormKind::RMSNorm, PositionKind::Rope, true, identity, identity},
    {"gpt2", NormKind::LayerNorm, PositionKind::Learned, false, gpt2_from_hf, gpt2_to_hf},
};

}  // namespace

// qwen2: q/k/v always biased, o never. llama: attention_bias on all four. gpt2: all biased.
bool Architecture::qkv_bias(const ModelConfig& c) const {
  return model_type == "qwen2" || model_type == "gpt2" || c.attention_bias;
}
bool Architecture::o_bias(const ModelConfig& c) const {
  return model_type == "gpt2" || (model_type == "llama" && c.attention_bias);
}
bool Architecture::mlp_bias(const ModelConfig& c) const {
  return model_type == "gpt2" || (model_type == "llama" && c.mlp_bias);
}

const Architecture& architecture_for(const ModelConfig& config) {
  for (const auto& a : kArchitectures) {
    if (a.model_type == config.model_type) return a;
  }
  fail("{}: field 'model_type': no architecture '{}'", config.source, config.model_type);
}

}  // namespace forma
