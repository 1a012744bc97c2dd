// The architecture registry. Each HF model_type has one spec (src/forma/model/arch/<type>.cpp):
// how its config.json reads into forma's ModelConfig (and back), the few structural facts in which
// decoder-only models differ (norm, position encoding, gated MLP, biases), and the map between the
// HF weight names of a checkpoint and forma's module names, as data (WeightRule) that hf_names.h
// applies. The modules read the spec and the config's generic fields; nothing outside arch/ tests a
// model_type string. Specs need no LibTorch (the fuzz targets parse configs without it).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "forma/model/config.h"

namespace forma {

class FieldReader;

enum class NormKind { RMSNorm, LayerNorm };
enum class PositionKind { Rope, Learned };

// One HF tensor and the forma tensor(s) it holds. "{L}" in a name stands for the layer index (the
// rule then applies to every layer). Several forma names: the HF tensor is their concatenation along
// split_dim (in HF's layout), in that order.
struct WeightRule {
  std::string hf;
  std::vector<std::string> forma;
  bool transposed = false;  // HF stores [in, out] (Conv1D): each forma part is transposed
  int64_t split_dim = -1;
  // The parts' sizes along split_dim; null: equal parts.
  std::vector<int64_t> (*part_sizes)(const ModelConfig& c) = nullptr;
  // The tensor is this many repeats of [part 0 | part 1 | ...] along split_dim, each part's share
  // 1/groups of its size (GPT-NeoX's query_key_value: per head [q_h | k_h | v_h]); null: one.
  int64_t (*groups)(const ModelConfig& c) = nullptr;
};

struct Architecture {
  const char* model_type;
  const char* hf_class;  // written to "architectures" when a config has none
  NormKind norm = NormKind::RMSNorm;
  PositionKind position = PositionKind::Rope;
  bool gated_mlp = true;  // down(act(gate(x)) * up(x)); false: down(act(up(x)))
  // GPT-2's init: o_proj and down_proj drawn with std / sqrt(2 * layers).
  bool scaled_residual_init = false;

  // config.json -> ModelConfig: every field this type reads, with HF's defaults for absent keys
  // (what is left in the reader becomes ModelConfig::extra). `original` is the whole object, for
  // "absent" versus "null". And back: the fields it read, into `j` (which holds extra).
  void (*read_config)(FieldReader& r, const nlohmann::json& original, ModelConfig& c);
  void (*write_config)(const ModelConfig& c, nlohmann::json& j);

  // The HF names that differ from forma's (which are HF's Llama names); none: identical names.
  std::vector<WeightRule> (*weight_rules)(const ModelConfig& c) = nullptr;
  // A checkpoint's name as the rules expect it ("" drops it: a buffer, not a weight); null: as is.
  std::string (*normalize_hf_name)(const std::string& name) = nullptr;

  // Biases, from the architecture and the config together.
  bool (*qkv_bias)(const ModelConfig& c);
  bool (*o_bias)(const ModelConfig& c);
  bool (*mlp_bias)(const ModelConfig& c);
};

// Every registered architecture, in registry order.
const std::vector<const Architecture*>& all_architectures();

// Throws forma::Error naming `source` and the known types for an unknown model_type.
const Architecture& architecture_named(const std::string& model_type, const std::string& source);
const Architecture& architecture_for(const ModelConfig& config);

// Shared bias rules.
bool always(const ModelConfig&);
bool never(const ModelConfig&);
bool if_attention_bias(const ModelConfig& c);
bool if_mlp_bias(const ModelConfig& c);

}  // namespace forma
