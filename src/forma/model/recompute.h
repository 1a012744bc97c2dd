// Activation recomputation ("gradient checkpointing") for one decoder layer. LibTorch's C++ API
// (2.15 too) has no torch::utils::checkpoint, so this is a custom autograd Function: its forward
// runs the layer without recording a graph (only the layer input is kept), and its backward
// reruns the layer with grad mode on and differentiates that rerun w.r.t. the input and the
// layer's parameters. The layer must be deterministic (forma's layers have no dropout).
#pragma once
#include <torch/torch.h>

#include "forma/model/decoder_layer.h"

namespace forma {

LayerOutput recomputed_layer_forward(DecoderLayerImpl& layer, const torch::Tensor& x,
                                     const LayerInputs& inputs);

}  // namespace forma
