// The architecture registry: per HF model_type, the few facts in which decoder-only models differ
// (norm, activation, position encoding, biases, dense or MoE MLP) and the map between the HF
// weight names of a checkpoint and forma's module names. One decoder (causal_lm.h) reads these.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "forma/model/config.h"

namespace forma {

enum class NormKind { RMSNorm, LayerNorm };
enum class PositionKind { Rope, Learned };

using StateDict = std::map<std::string, torch::Tensor>;

struct Architecture {
  std::string model_type;
  NormKind norm = NormKind::RMSNorm;
  PositionKind position = PositionKind::Rope;
  bool gated_mlp = true;  // down(act(gate(x)) * up(x)); false: down(act(up(x)))
  // HF weight names -> forma names (tensors transposed/split as needed), and back. Both skip
  // nothing silently: the loader compares the result with the model's own parameter names.
  // from_hf returns views of its inputs (possibly non-contiguous), never copies.
  StateDict (*from_hf)(const StateDict& hf, const ModelConfig& config);
  StateDict (*to_hf)(const StateDict& forma, const ModelConfig& config);

  // Biases, from the architecture and the config together.
  bool qkv_bias(const ModelConfig& c) const;
  bool o_bias(const ModelConfig& c) const;
  bool mlp_bias(const ModelConfig& c) const;
};

// Throws forma::Error naming config.source for an unknown model_type.
const Architecture& architecture_for(const ModelConfig& config);

}  // namespace forma
