#include "forma/parallel/tensor_parallel_specs.h"

#include <algorithm>

#include "forma/core/error.h"
#include "forma/model/architecture.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::parallel::tensor_parallel_specs_detail {

ShardSpec split_rows(int64_t full_size) { return ShardSpec{0, full_size, 1, false}; }
ShardSpec split_columns(int64_t full_size) { return ShardSpec{1, full_size, 1, false}; }

// A column-parallel Linear: output features (weight rows, bias) split as `spec` says.
void column(std::map<std::string, ShardSpec>& specs, const std::string& name, const ShardSpec& spec, bool bias) {
  specs[name + ".weight"] = spec;
  if (bias) specs[name + ".bias"] = spec;
}

// Attention: whole heads per rank. Key-value heads split like the query heads, or each one held by
// the tp / num_key_value_heads ranks whose query heads read it (partial gradients).
void attention(std::map<std::string, ShardSpec>& specs, const ModelConfig& c, const Architecture& arch,
               const std::string& attn, int tp) {
  const int64_t kv_copies = c.num_key_value_heads >= tp ? 1 : tp / c.num_key_value_heads;
  const ShardSpec kv{0, c.num_key_value_heads * c.head_dim, kv_copies, kv_copies > 1};
  const bool qkv_bias = arch.qkv_bias(c);
  column(specs, attn + ".q_proj", split_rows(c.num_attention_heads * c.head_dim), qkv_bias);
  column(specs, attn + ".k_proj", kv, qkv_bias);
  column(specs, attn + ".v_proj", kv, qkv_bias);
  if (c.qk_norm_whole) {
    // Split as the projections they normalise: each rank its heads' part (NormImpl::sum_across).
    specs[attn + ".q_norm.weight"] = specs.at(attn + ".q_proj.weight");
    specs[attn + ".k_norm.weight"] = specs.at(attn + ".k_proj.weight");
  }
  if (c.qk_norm) {
    // Whole on every rank, applied to that rank's heads: each rank's gradient is a partial sum.
    specs[attn + ".q_norm.weight"] = ShardSpec{-1, 0, tp, tp > 1};
    specs[attn + ".k_norm.weight"] = ShardSpec{-1, 0, tp, tp > 1};
  }
  if (c.head_layernorm) {
    // Every head's norm on every rank, each rank applying its own heads' (HeadNorms::head_offset).
    for (int64_t h = 0; h < c.num_attention_heads; ++h) {
      specs[attn + ".q_layernorm.norms." + std::to_string(h) + ".weight"] = ShardSpec{-1, 0, tp, tp > 1};
    }
    for (int64_t h = 0; h < c.num_key_value_heads; ++h) {
      specs[attn + ".k_layernorm.norms." + std::to_string(h) + ".weight"] = ShardSpec{-1, 0, tp, tp > 1};
    }
  }
  // Row-parallel: input features split; the bias stays whole (added after the reduction).
  specs[attn + ".o_proj.weight"] = split_columns(c.num_attention_heads * c.head_dim);
}

// Multi-head latent attention (mla_attention.h): the latent projections and their norms are whole
// on every rank, each rank's gradient a partial sum over its heads; the up-projections split by
// heads (column-parallel), o_proj by its input features (row-parallel).
void latent_attention(std::map<std::string, ShardSpec>& specs, const ModelConfig& c, const std::string& attn,
                      int tp) {
  const ShardSpec whole_partial{-1, 0, tp, tp > 1};
  const int64_t heads = c.num_attention_heads, qk = c.qk_nope_head_dim + c.head_dim;
  if (c.q_lora_rank > 0) {
    column(specs, attn + ".q_a_proj", whole_partial, c.attention_bias);
    specs[attn + ".q_a_layernorm.weight"] = whole_partial;
    column(specs, attn + ".q_b_proj", split_rows(heads * qk), false);
  } else {
    column(specs, attn + ".q_proj", split_rows(heads * qk), false);
  }
  column(specs, attn + ".kv_a_proj_with_mqa", whole_partial, c.attention_bias);
  specs[attn + ".kv_a_layernorm.weight"] = whole_partial;
  column(specs, attn + ".kv_b_proj", split_rows(heads * (c.qk_nope_head_dim + c.v_head_dim)), false);
  specs[attn + ".o_proj.weight"] = split_columns(heads * c.v_head_dim);
}

}  // namespace forma::parallel::tensor_parallel_specs_detail

namespace forma::parallel {

void check_tensor_parallel_config(const ModelConfig& c, int tp) {
  check(tp >= 1, "tensor_parallel must be >= 1, got {}", tp);
  const std::string& where = c.source.empty() ? std::string("the model config") : c.source;
  check(c.num_attention_heads % tp == 0, "{}: num_attention_heads={} is not divisible by tensor_parallel={}", where,
        c.num_attention_heads, tp);
  // A norm over all heads' k (olmo2) sums over the ranks' heads: a key-value head held by several
  // ranks would be counted more than once.
  check(!c.qk_norm_whole || c.num_key_value_heads % tp == 0,
        "{}: q/k norms over all attention heads (qk_norm_whole, olmo2's q_norm/k_norm) need num_key_value_heads={} "
        "divisible by tensor_parallel={} (each key-value head on one rank)",
        where, c.num_key_value_heads, tp);
  const int64_t kv = c.num_key_value_heads;
  check(kv > 0 && (kv % tp == 0 || tp % kv == 0),
        "{}: num_key_value_heads={} and tensor_parallel={}: one must divide the other (the key-value heads are "
        "split over the ranks, or each replicated on tensor_parallel / num_key_value_heads ranks)",
        where, kv, tp);
  check(c.intermediate_size % tp == 0, "{}: intermediate_size={} is not divisible by tensor_parallel={}", where,
        c.intermediate_size, tp);
  check(c.sparse_layers.empty() || c.dense_intermediate_size % tp == 0,
        "{}: intermediate_size={} (the dense layers') is not divisible by tensor_parallel={}", where,
        c.dense_intermediate_size, tp);
  check(c.shared_expert_intermediate_size % tp == 0,
        "{}: shared_expert_intermediate_size={} is not divisible by tensor_parallel={}", where,
        c.shared_expert_intermediate_size, tp);
  // Padding gives every rank ceil(V / tp) rows; the last rank must still own at least one id.
  const int64_t slice = (c.vocab_size + tp - 1) / tp;
  check(c.vocab_size > (tp - 1) * slice,
        "{}: vocab_size={} is too small to split over tensor_parallel={} ranks ({} ids each)", where, c.vocab_size,
        tp, slice);
}

ShardSpec whole_shard_spec(int tp, bool sequence_parallel) {
  return ShardSpec{-1, 0, tp, sequence_parallel && tp > 1};
}

std::map<std::string, ShardSpec> tensor_parallel_shard_specs(const ModelConfig& c, int tp, bool sequence_parallel) {
  namespace detail = tensor_parallel_specs_detail;
  check_tensor_parallel_config(c, tp);
  const Architecture& arch = architecture_for(c);
  std::map<std::string, ShardSpec> specs;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i);
    const std::string attn = layer + ".self_attn";
    if (c.kv_lora_rank > 0) {
      detail::latent_attention(specs, c, attn, tp);
    } else {
      detail::attention(specs, c, arch, attn, tp);
    }
    if (!c.layer_is_sparse(i)) {
      const std::string mlp = layer + ".mlp";
      // A dense layer of an MoE model (qwen2_moe's mlp_only_layers) has its own width.
      const bool mlp_bias = arch.mlp_bias(c);
      const int64_t width = c.is_moe() ? c.dense_intermediate_size : c.intermediate_size;
      if (arch.gated_mlp) detail::column(specs, mlp + ".gate_proj", detail::split_rows(width), mlp_bias);
      detail::column(specs, mlp + ".up_proj", detail::split_rows(width), mlp_bias);
      specs[mlp + ".down_proj.weight"] = detail::split_columns(width);
      continue;
    }
    const std::string moe = layer + ".block_sparse_moe";
    for (int64_t e = 0; e < c.num_local_experts; ++e) {
      const std::string expert = moe + ".experts." + std::to_string(e);
      detail::column(specs, expert + ".w1", detail::split_rows(c.intermediate_size), false);
      detail::column(specs, expert + ".w3", detail::split_rows(c.intermediate_size), false);
      specs[expert + ".w2.weight"] = detail::split_columns(c.intermediate_size);
    }
    // The router runs on every token on every rank (tokens are whole inside the block, with or
    // without sequence parallel), so its gradient is whole everywhere.
    ShardSpec router = whole_shard_spec(tp, sequence_parallel);
    router.grad_is_partial = false;
    specs[moe + ".gate.weight"] = router;
    if (c.shared_expert_intermediate_size > 0) {
      // The shared expert splits like a dense MLP; its gate (one output) is whole, like the router.
      const int64_t width = c.shared_expert_intermediate_size;
      detail::column(specs, moe + ".shared_expert.gate_proj", detail::split_rows(width), false);
      detail::column(specs, moe + ".shared_expert.up_proj", detail::split_rows(width), false);
      specs[moe + ".shared_expert.down_proj.weight"] = detail::split_columns(width);
      if (!c.shared_expert_ungated) specs[moe + ".shared_expert_gate.weight"] = router;
    }
  }
  specs["model.embed_tokens.weight"] = detail::split_rows(c.vocab_size);
  // Tied: the output projection reads the embedding's shard and has no parameter of its own.
  if (!c.tie_word_embeddings) detail::column(specs, "lm_head", detail::split_rows(c.vocab_size), c.lm_head_bias);
  return specs;
}

LoraSpecs lora_shard_specs(const ShardSpec& base, int tp) {
  const ShardSpec whole_partial{-1, 0, tp, tp > 1};
  if (base.dim == 0) return LoraSpecs{whole_partial, base};
  if (base.dim == 1) return LoraSpecs{base, whole_partial};
  return LoraSpecs{base, base};
}

PieceRange piece_range(const ShardSpec& spec, int tp, int rank) {
  if (spec.dim < 0) return PieceRange{0, spec.full_size, 0};
  const int64_t pieces = tp / spec.copies;
  const int64_t length = (spec.full_size + pieces - 1) / pieces;
  const int64_t start = std::min<int64_t>(rank / spec.copies * length, spec.full_size);
  const int64_t present = std::min(length, spec.full_size - start);
  return PieceRange{start, present, length - present};
}

}  // namespace forma::parallel
