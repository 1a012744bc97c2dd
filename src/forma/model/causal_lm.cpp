#include "forma/model/causal_lm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/DefaultDtype.h>

#include <cmath>
#include <functional>
#include <map>

#include "forma/core/error.h"
#include "forma/kernels/gemv.h"
#include "forma/model/decoder_layer.h"
#include "forma/model/mlp.h"
#include "forma/model/module_call.h"
#include "forma/model/recompute.h"
#include "forma/model/rope.h"

namespace forma {

namespace causal_lm_detail {

// Sets torch's default dtype for the guard's lifetime, as HF's from_pretrained(torch_dtype=...)
// does while it builds a model: every parameter a module constructor creates (Linear, Embedding,
// Norm) is then born in that dtype. Buffers that must stay fp32 (rope inv_freq) say so explicitly.
class DefaultDTypeGuard {
 public:
  explicit DefaultDTypeGuard(torch::ScalarType dtype) : previous_(c10::get_default_dtype()) {
    c10::set_default_dtype(caffe2::TypeMeta::fromScalarType(dtype));
  }
  ~DefaultDTypeGuard() { c10::set_default_dtype(previous_); }
  DefaultDTypeGuard(const DefaultDTypeGuard&) = delete;
  DefaultDTypeGuard& operator=(const DefaultDTypeGuard&) = delete;

 private:
  caffe2::TypeMeta previous_;
};

}  // namespace causal_lm_detail

TransformerImpl::TransformerImpl(const ModelConfig& c) : config_(c), arch_(&architecture_for(c)) {
  register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  if (c.embedding_norm) register_module("embed_layernorm", hidden_norm(c, *arch_));  // bloom
  if (arch_->position == PositionKind::Learned) {
    register_module("embed_positions", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  } else {
    inv_freq_ = rope_inv_freq(c);
    rope_scale_ = rope_attention_factor(c);
    if (c.local_rope_theta > 0) {  // gemma3: sliding layers rotate with their own theta, unscaled
      ModelConfig local = c;
      local.rope_theta = c.local_rope_theta;
      local.rope_scaling.reset();
      local_inv_freq_ = rope_inv_freq(local);
    }
  }
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers_->push_back(DecoderLayer(c, *arch_, i));
  register_module("norm", hidden_norm(c, *arch_));
}

const torch::Tensor& TransformerImpl::inv_freq_for(int64_t seq_len, const torch::Device& device) {
  if (rope_depends_on_length(config_)) {
    // dynamic: every length past max_position changes the base; longrope: two sets.
    const RopeScaling& s = *config_.rope_scaling;
    const int64_t key = s.rope_type == "dynamic" ? std::max(seq_len, config_.max_position_embeddings)
                                                 : static_cast<int64_t>(seq_len > s.original_max_position_embeddings);
    if (key != inv_freq_length_) {
      inv_freq_ = rope_inv_freq(config_, seq_len);
      inv_freq_length_ = key;
    }
  }
  if (inv_freq_.device() != device) inv_freq_ = inv_freq_.to(device);
  return inv_freq_;
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& input_ids, KVCache* cache,
                                       std::vector<torch::Tensor>* hidden_states, const PackedPositions* packed) {
  check(input_ids.dim() == 2, "input_ids must be [B, T], got {} dimensions", input_ids.dim());
  const int64_t start = cache ? cache->length() : 0;
  const int64_t count = input_ids.size(1);
  torch::Tensor x = call_child(*this, "embed_tokens", input_ids);  // [B, T, C]
  if (config_.scale_embeddings) {
    // HF Gemma: the scale is a tensor cast to the embedding's dtype first (bf16: sqrt(2048) = 45.25).
    x = x * torch::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)), x.options());
  }
  if (config_.embedding_multiplier != 1.0) x = x * config_.embedding_multiplier;  // granite
  if (config_.embedding_norm) x = named_children()["embed_layernorm"]->as<NormImpl>()->forward(x);  // bloom
  if (local_inv_freq_.defined() && local_inv_freq_.device() != x.device()) local_inv_freq_ = local_inv_freq_.to(x.device());
  LayerInputs inputs;
  RopeTables local_rope;  // the sliding layers' tables when they have their own rope
  inputs.cache = cache;
  inputs.kernel = attention_kernel;
  // The attention mask for a window (0: full causal), built once per distinct window of the layers.
  std::function<torch::Tensor(int64_t)> mask_for;
  // Rows without padding (all of them at 0) take the plain path: the same positions and mask, built
  // once for the batch instead of per row (and no mask at all for a decode step).
  if (packed) {
    check(cache == nullptr, "packed samples are a training input: no KV cache");
    torch::Tensor positions = packed->position_ids.to(x.device());
    check(positions.sizes() == input_ids.sizes() && packed->segment_ids.sizes() == input_ids.sizes(),
          "packed position_ids and segment_ids must be [B, T] as input_ids");
    check(arch_->position == PositionKind::Rope || positions.max().item<int64_t>() < config_.max_position_embeddings,
          "a packed position exceeds max_position_embeddings {} of a learned-position model",
          config_.max_position_embeddings);
    if (arch_->position == PositionKind::Learned) {
      x = x + call_child(*this, "embed_positions", positions);
    } else {
      const int64_t length = rope_depends_on_length(config_) ? positions.max().item<int64_t>() + 1 : 0;
      inputs.rope = rope_tables_at(inv_freq_for(length, x.device()), positions.unsqueeze(1), rope_scale_);  // [B, 1, T, D]
      if (local_inv_freq_.defined()) local_rope = rope_tables_at(local_inv_freq_, positions.unsqueeze(1));
    }
    torch::Tensor segments = packed->segment_ids.to(x.device());
    mask_for = [segments](int64_t window) { return packed_causal_mask(segments, window); };
  } else if (cache && cache->left_padding().defined() && cache->has_padding()) {
    // Left-padded batch rows (kv_cache.h): each row's positions start after its padding; padding
    // tokens get position 0 and are masked out.
    torch::Tensor padding = cache->left_padding().to(x.device());
    check(padding.size(0) == input_ids.size(0), "{} batch rows for a cache padded for {}",
          input_ids.size(0), padding.size(0));
    torch::Tensor positions =
        (torch::arange(start, start + count, padding.options()).unsqueeze(0) - padding.unsqueeze(1))
            .clamp_min(0);  // [B, T]
    const int64_t last = positions.max().item<int64_t>();
    check(arch_->position == PositionKind::Rope || last < config_.max_position_embeddings,
          "position {} exceeds max_position_embeddings {} of a learned-position model", last,
          config_.max_position_embeddings);
    if (arch_->position == PositionKind::Learned) {
      x = x + call_child(*this, "embed_positions", positions);
    } else {
      inputs.rope = rope_tables_at(inv_freq_for(last + 1, x.device()), positions.unsqueeze(1), rope_scale_);
      if (local_inv_freq_.defined()) local_rope = rope_tables_at(local_inv_freq_, positions.unsqueeze(1));
    }
    mask_for = [start, count, padding](int64_t window) { return padded_causal_mask(start, count, window, padding); };
  } else {
    check(arch_->position == PositionKind::Rope || start + count <= config_.max_position_embeddings,
          "sequence of {} positions exceeds max_position_embeddings {} of a learned-position model",
          start + count, config_.max_position_embeddings);
    if (arch_->position == PositionKind::Learned) {
      torch::Tensor positions = torch::arange(start, start + count, input_ids.options());
      x = x + call_child(*this, "embed_positions", positions);
    } else {
      inputs.rope = rope_tables(inv_freq_for(start + count, x.device()), start, count, rope_scale_);
      if (local_inv_freq_.defined()) local_rope = rope_tables(local_inv_freq_, start, count);
    }
    const torch::Device device = x.device();
    mask_for = [start, count, device](int64_t window) {
      return needs_causal_mask(start, count, window) ? causal_mask(start, count, window, device) : torch::Tensor();
    };
  }
  if (hidden_states) hidden_states->assign(1, x);
  router_logits_.clear();
  const bool recompute = gradient_checkpointing && cache == nullptr && torch::GradMode::is_enabled();
  std::map<int64_t, torch::Tensor> masks;  // window -> mask
  const RopeTables global_rope = inputs.rope;
  for (size_t i = 0; i < layers_->size(); ++i) {
    const int64_t window = config_.layer_window(static_cast<int64_t>(i));
    if (!masks.count(window)) masks[window] = mask_for(window);
    inputs.mask = masks[window];
    if (local_rope.cos.defined()) inputs.rope = window > 0 ? local_rope : global_rope;
    auto& layer = *layers_[i]->as<DecoderLayerImpl>();
    LayerOutput out = recompute ? recomputed_layer_forward(layer, x, inputs) : layer.forward(x, inputs);
    x = out.hidden;
    if (out.router_logits.defined()) router_logits_.push_back(out.router_logits);
    if (hidden_states) hidden_states->push_back(x);
  }
  if (cache) cache->advance(count);
  x = named_children()["norm"]->as<NormImpl>()->forward(x);
  if (hidden_states) hidden_states->back() = x;  // HF: the last entry is after the final norm
  return x;
}

CausalLMImpl::CausalLMImpl(const ModelConfig& c, torch::ScalarType dtype) : config_(c), dtype_(dtype) {
  check(dtype == torch::kFloat || dtype == torch::kBFloat16, "a model computes in float32 or bfloat16, not {}",
        c10::toString(dtype));
  causal_lm_detail::DefaultDTypeGuard default_dtype(dtype);
  model_ = register_module("model", Transformer(c));
  if (!c.tie_word_embeddings) {
    register_module("lm_head",
                    torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.vocab_size).bias(c.lm_head_bias)));
  }
}

torch::Tensor CausalLMImpl::output_weight() {
  return config_.tie_word_embeddings ? child_weight(*model_, "embed_tokens") : child_weight(*this, "lm_head");
}

torch::Tensor CausalLMImpl::forward(const torch::Tensor& input_ids, KVCache* cache) {
  return forward_with_hidden_states(input_ids, nullptr, cache);
}

torch::Tensor CausalLMImpl::forward_packed(const torch::Tensor& input_ids, const PackedPositions* packed) {
  return output_logits(model_->forward(input_ids, nullptr, nullptr, packed));
}

torch::Tensor CausalLMImpl::forward_with_hidden_states(const torch::Tensor& input_ids,
                                                       std::vector<torch::Tensor>* hidden_states,
                                                       KVCache* cache) {
  return output_logits(model_->forward(input_ids, cache, hidden_states));
}

torch::Tensor CausalLMImpl::output_logits(const torch::Tensor& hidden) {
  // A tied model has no lm_head of its own unless tensor parallelism registered one (sharing the
  // vocab-parallel embedding's weight, see parallel/tensor_parallel_model.h).
  torch::Tensor logits = named_children().contains("lm_head")
                             ? call_child(*this, "lm_head", hidden)
                             : kernels::linear(hidden, child_weight(*model_, "embed_tokens"));
  if (config_.logit_scale != 1.0) logits = logits * config_.logit_scale;  // granite: 1 / logits_scaling
  // gemma2's soft-cap, in the model's dtype before the fp32 cast, op by op as HF computes it (in
  // bf16 each step rounds).
  const double cap = config_.final_logit_softcapping;
  if (cap > 0) logits = torch::tanh(logits / cap) * cap;
  return logits.to(torch::kFloat);  // [B, T, V]
}

torch::Tensor CausalLMImpl::aux_loss() const {
  const auto& logits = model_->router_logits();
  if (!config_.is_moe() || logits.empty()) return torch::zeros({}, torch::kFloat);
  return config_.router_aux_loss_coef * load_balancing_loss(logits, config_.num_experts_per_tok);
}

void CausalLMImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  const double std_dev = config_.initializer_range;
  // GPT-2 scales the residual output projections (HF: c_proj weights) by 1/sqrt(2 * n_layer).
  const double residual_std = std_dev / std::sqrt(2.0 * config_.num_hidden_layers);
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (ends_with(name, ".bias") || ends_with(name, ".e_score_correction_bias")) {  // the latter: HF's zeros
      p.zero_();
    } else if (ends_with(name, "norm.weight") || ends_with(name, "layernorm.weight") ||
               name.find("layernorm.norms.") != std::string::npos) {
      continue;  // every Norm is reset to its identity below (weight 1, or 0 when it scales by 1 + w)
    } else {
      bool residual = architecture_for(config_).scaled_residual_init &&
                      (ends_with(name, "o_proj.weight") || ends_with(name, "down_proj.weight"));
      torch::Tensor values = torch::empty(p.sizes(), torch::kFloat);
      values.normal_(0.0, residual ? residual_std : std_dev, generator);
      p.copy_(values);
    }
  }
  for (const auto& module : modules()) {
    if (auto* norm = module->as<NormImpl>()) norm->reset_to_identity();
  }
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  check(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
            logits.size(1) == labels.size(1),
        "causal_lm_loss: logits [B,T,V] and labels [B,T] disagree");
  const int64_t vocab = logits.size(2);
  torch::Tensor shifted_logits = logits.slice(1, 0, -1).reshape({-1, vocab}).to(torch::kFloat);
  torch::Tensor shifted_labels = labels.slice(1, 1).reshape({-1});
  return torch::nn::functional::cross_entropy(
      shifted_logits, shifted_labels,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

}  // namespace forma
