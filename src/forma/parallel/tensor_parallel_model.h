// Tensor (and sequence) parallelism for a CausalLM, Megatron-LM's scheme applied from outside the
// model by module name (the model files stay plain math):
//   attention  q/k/v column-parallel, heads split (key-value heads split too, or replicated when
//              tensor_parallel exceeds num_key_value_heads); o_proj row-parallel
//   MLP        gate/up column-parallel, down row-parallel; Mixtral experts' w1/w3 and w2 likewise,
//              the router replicated
//   vocabulary embed_tokens a vocab-parallel embedding, lm_head column-parallel over the
//              vocabulary (tied: sharing the embedding's shard); the logits stay split and the loss
//              is vocab_parallel_cross_entropy, so no rank holds full-vocabulary logits
//   the rest   norms, position embeddings, row-parallel biases: whole on every rank
// gpt2's fused c_attn is already three q/k/v projections inside forma (architecture.cpp).
//
// A vocabulary that the tp size does not divide is padded: every rank holds ceil(V / tp) rows, the
// last rank's tail rows are zeros that no id reaches and no logit reads.
//
// sequence_parallel: the residual stream, norms and dropout-free regions hold [B, T/tp, C] (T must
// divide by tp); all-gather / reduce-scatter replace the all-reduces. Norm weights and biases,
// row-parallel biases and gpt2's position embedding then get only this rank's tokens' share of
// their gradient: sync_tensor_parallel_grads sums them. Hidden states returned by
// forward_with_hidden_states are then this rank's sequence slices.
//
// A training step with tensor parallelism (dp, if any, as usual around it):
//   auto plan = parallelize_tensor(model, mesh.group(Dim::tp), {recipe.sequence_parallel});
//   ... build the optimizer from model->parameters() (the shards) ...
//   torch::Tensor logits = model->forward(inputs);                  // [B, T, V / tp]
//   torch::Tensor loss = tensor_parallel_loss(plan, logits, targets) + model->aux_loss();
//   loss.backward();                                                  // the same loss on every tp rank
//   sync_tensor_parallel_grads(model, plan);                          // before clipping and the dp reduce
//   double norm = clip_tensor_parallel_grad_norm(model, plan, max_norm);
//   optimizer.step();
// and to save: gather_hf_state_dict(model, plan) on every rank (collective), written by one.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "forma/model/architecture.h"
#include "forma/model/causal_lm.h"
#include "forma/parallel/device_mesh.h"
#include "forma/parallel/tensor_parallel_specs.h"

namespace forma::parallel {

struct TensorParallelOptions {
  bool sequence_parallel = false;
};

struct TensorParallelPlan {
  GroupPtr group;
  int size = 1, rank = 0;
  bool sequence_parallel = false;
  ModelConfig config;
  int64_t vocab_start = 0;                  // this rank's first vocabulary id
  std::map<std::string, ShardSpec> shards;  // by forma parameter name (named_parameters())
};

// Turns `model` (loaded or initialised whole, the same on every rank) into this rank's shard:
// its Linear/Embedding children are replaced by the parallel layers holding their slices of the
// weights. Parameter names do not change; their shapes do. Call before building the optimizer.
TensorParallelPlan parallelize_tensor(CausalLM& model, const GroupPtr& tp_group,
                                      const TensorParallelOptions& options = {});

// The mean next-token cross entropy of this rank's vocab-parallel logits [..., V/tp] against
// targets [...] (ids, -100 ignored), equal to torch's cross_entropy of the full logits.
torch::Tensor tensor_parallel_loss(const TensorParallelPlan& plan, const torch::Tensor& logits,
                                   const torch::Tensor& targets);
// The full logits [..., V] from every rank's slice (for generation, evaluation and tests).
torch::Tensor gather_logits(const TensorParallelPlan& plan, const torch::Tensor& logits);

// This rank's piece of a full tensor (piece_range's slice, zero-padded), and the full tensor from
// every rank's piece (a collective).
torch::Tensor shard_tensor(const torch::Tensor& full, const ShardSpec& spec, int tp_size, int tp_rank);
torch::Tensor gather_shards(const torch::Tensor& local, const ShardSpec& spec, const GroupPtr& group);

// Full parameters (or their gradients; undefined ones as zeros) under forma's names, on every rank
// (a collective: all tp ranks call it).
StateDict gather_full_parameters(CausalLM& model, const TensorParallelPlan& plan, bool gradients = false);
// The same for the trainable parameters only (a LoRA run's adapters and modules_to_save).
StateDict gather_trainable_parameters(CausalLM& model, const TensorParallelPlan& plan);
// The same under HF names and layouts (gpt2: c_attn fused): what save_pretrained writes.
StateDict gather_hf_state_dict(CausalLM& model, const TensorParallelPlan& plan);
// Copies this rank's slices of full forma-named tensors (a whole-model checkpoint) into the shards.
void load_full_parameters(CausalLM& model, const TensorParallelPlan& plan, const StateDict& full);

// After backward (all micro-batches), before clipping: sums the partial gradients (see
// ShardSpec::grad_is_partial) over the tp group, in one all-reduce. A no-op without them.
void sync_tensor_parallel_grads(CausalLM& model, const TensorParallelPlan& plan);
// The L2 norm of the whole model's gradient (every element counted once), the same on every tp
// rank; call after sync_tensor_parallel_grads.
double tensor_parallel_grad_norm(CausalLM& model, const TensorParallelPlan& plan);
// As train::clip_grad_norm (torch's clip_grad_norm_) with that norm; returns the norm before clipping.
double clip_tensor_parallel_grad_norm(CausalLM& model, const TensorParallelPlan& plan, double max_norm);

}  // namespace forma::parallel
