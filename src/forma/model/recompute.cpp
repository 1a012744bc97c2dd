#include "forma/model/recompute.h"

#include "forma/model/autocast.h"

namespace forma {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<torch::Tensor> trainable_parameters(DecoderLayerImpl& layer) {
  std::vector<torch::Tensor> out;
  for (const auto& p : layer.parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

// The inputs of one layer call from the autograd function's arguments, where an empty tensor
// stands for an undefined one (the arguments must be defined tensors).
LayerInputs layer_inputs(const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                         int64_t kernel) {
  LayerInputs inputs;
  if (cos.numel() > 0) inputs.rope = {cos, sin};
  if (mask.numel() > 0) inputs.mask = mask;
  inputs.kernel = static_cast<AttentionKernel>(kernel);
  return inputs;
}

struct RecomputeLayer : public torch::autograd::Function<RecomputeLayer> {
  // Inputs: x, the layer's trainable parameters (so autograd routes their gradients here), the
  // rope tables and mask (constants), and the layer itself by address.
  static variable_list forward(AutogradContext* ctx, torch::Tensor x, torch::TensorList params,
                               torch::Tensor cos, torch::Tensor sin, torch::Tensor mask,
                               int64_t layer_address, int64_t kernel) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(layer_address);
    ctx->save_for_backward({x});
    ctx->saved_data["layer"] = layer_address;
    ctx->saved_data["num_params"] = static_cast<int64_t>(params.size());
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["kernel"] = kernel;
    // The recomputation must cast as this forward did (bf16 autocast in mixed-precision training).
    const AutocastState autocast = current_autocast(x.device().type());
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast.dtype);
    LayerOutput out = layer->forward(x, layer_inputs(cos, sin, mask, kernel));
    if (out.router_logits.defined()) return {out.hidden, out.router_logits};
    return {out.hidden};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    const int64_t num_params = ctx->saved_data["num_params"].toInt();
    torch::Tensor saved_x = ctx->get_saved_variables()[0];
    torch::Tensor x = saved_x.detach().requires_grad_(saved_x.requires_grad());
    LayerInputs inputs = layer_inputs(ctx->saved_data["cos"].toTensor(), ctx->saved_data["sin"].toTensor(),
                                      ctx->saved_data["mask"].toTensor(), ctx->saved_data["kernel"].toInt());
    variable_list outputs, grads;
    {
      torch::AutoGradMode grad_on(true);
      AutocastScope autocast({ctx->saved_data["autocast"].toBool(), x.device().type(),
                              static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt())});
      LayerOutput out = layer->forward(x, inputs);
      outputs.push_back(out.hidden);
      if (out.router_logits.defined()) outputs.push_back(out.router_logits);
    }
    variable_list used_outputs, used_grads;
    for (size_t i = 0; i < outputs.size() && i < grad_outputs.size(); ++i) {
      if (grad_outputs[i].defined() && outputs[i].requires_grad()) {
        used_outputs.push_back(outputs[i]);
        used_grads.push_back(grad_outputs[i]);
      }
    }
    variable_list wrt;
    if (x.requires_grad()) wrt.push_back(x);
    std::vector<torch::Tensor> params = trainable_parameters(*layer);
    TORCH_CHECK(static_cast<int64_t>(params.size()) == num_params,
                "recompute: the layer's trainable parameters changed between forward and backward");
    wrt.insert(wrt.end(), params.begin(), params.end());
    variable_list computed;
    if (!used_outputs.empty() && !wrt.empty()) {
      computed = torch::autograd::grad(used_outputs, wrt, used_grads, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    }
    // One gradient per forward argument: x, each parameter, cos, sin, mask, layer address, kernel.
    variable_list result;
    size_t next = 0;
    torch::Tensor grad_x;
    if (x.requires_grad() && !computed.empty()) grad_x = computed[next++];
    result.push_back(grad_x);
    for (int64_t p = 0; p < num_params; ++p) {
      result.push_back(computed.empty() ? torch::Tensor() : computed[next++]);
    }
    for (int i = 0; i < 5; ++i) result.push_back(torch::Tensor());
    return result;
  }
};

}  // namespace

LayerOutput recomputed_layer_forward(DecoderLayerImpl& layer, const torch::Tensor& x,
                                     const LayerInputs& inputs) {
  std::vector<torch::Tensor> params = trainable_parameters(layer);
  // Learned-position models have no rope tables and plain causal attention no mask: pass empty
  // tensors in their place (autograd arguments must be defined tensors).
  auto or_empty = [](const torch::Tensor& t) { return t.defined() ? t : torch::empty({0}); };
  variable_list out = RecomputeLayer::apply(x, torch::TensorList(params), or_empty(inputs.rope.cos),
                                            or_empty(inputs.rope.sin), or_empty(inputs.mask),
                                            reinterpret_cast<int64_t>(&layer), static_cast<int64_t>(inputs.kernel));
  return {out[0], out.size() > 1 ? out[1] : torch::Tensor()};
}

}  // namespace forma
