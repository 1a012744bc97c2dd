#include "forma/parallel/tensor_parallel_model.h"

#include "forma/core/error.h"
#include "forma/parallel/tensor_parallel_layers.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::parallel::tensor_parallel_model_detail {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

// Replaces a model's children by their parallel counterparts and records every split in the plan.
class Sharder {
 public:
  Sharder(CausalLM& model, TensorParallelPlan& plan) : plan_(plan), modules_(model->named_modules()) {}

  ModulePtr module(const std::string& name) {
    const ModulePtr* found = modules_.find(name);
    check(found != nullptr, "tensor parallel: the model has no module '{}'", name);
    return *found;
  }
  bool has(const std::string& name) const { return modules_.contains(name); }

  torch::nn::LinearImpl& linear(const std::string& parent, const std::string& child) {
    const std::string name = parent.empty() ? child : parent + "." + child;
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(module(name).get());
    check(linear != nullptr, "tensor parallel: '{}' is not a Linear layer", name);
    return *linear;
  }

  // This rank's piece of a full weight, a fresh leaf tensor.
  torch::Tensor piece(const torch::Tensor& full, const ShardSpec& spec) const {
    torch::NoGradGuard no_grad;
    return shard_tensor(full.detach(), spec, plan_.size, plan_.rank);
  }

  // Output features split as `spec` says (dim 0 of the weight and of the bias).
  void column(const std::string& parent, const std::string& child, const ShardSpec& spec,
              std::shared_ptr<ColumnInput> input) {
    auto& full = linear(parent, child);
    torch::Tensor bias = full.bias.defined() ? piece(full.bias, spec) : torch::Tensor();
    module(parent)->replace_module(
        child, std::make_shared<ColumnParallelLinearImpl>(piece(full.weight, spec), bias, std::move(input)));
    plan_.shards[parent + "." + child + ".weight"] = spec;
    if (bias.defined()) plan_.shards[parent + "." + child + ".bias"] = spec;
  }

  // Input features split evenly; the bias stays whole (added after the reduction).
  void row(const std::string& parent, const std::string& child, bool sequence_parallel) {
    auto& full = linear(parent, child);
    ShardSpec spec{1, full.weight.size(1), 1, false};
    torch::Tensor bias = full.bias.defined() ? full.bias.detach().clone() : torch::Tensor();
    module(parent)->replace_module(child, std::make_shared<RowParallelLinearImpl>(piece(full.weight, spec), bias,
                                                                                  plan_.group, sequence_parallel));
    plan_.shards[parent + "." + child + ".weight"] = spec;
  }

 private:
  TensorParallelPlan& plan_;
  torch::OrderedDict<std::string, ModulePtr> modules_;
};

ShardSpec split(int64_t full_size) { return ShardSpec{0, full_size, 1, false}; }

void shard_attention(Sharder& s, const TensorParallelPlan& plan, const std::string& layer) {
  const ModelConfig& c = plan.config;
  const std::string attn = layer + ".self_attn";
  // Whole heads per rank. Key-value heads: split like the query heads, or each one held by the
  // tp / num_key_value_heads ranks whose query heads read it (their gradients are partial sums).
  const int64_t kv_copies = c.num_key_value_heads >= plan.size ? 1 : plan.size / c.num_key_value_heads;
  const ShardSpec kv{0, c.num_key_value_heads * c.head_dim, kv_copies, kv_copies > 1};
  auto input = std::make_shared<ColumnInput>(plan.group, plan.sequence_parallel);
  s.column(attn, "q_proj", split(c.num_attention_heads * c.head_dim), input);
  s.column(attn, "k_proj", kv, input);
  s.column(attn, "v_proj", kv, input);
  s.row(attn, "o_proj", plan.sequence_parallel);
}

void shard_feed_forward(Sharder& s, TensorParallelPlan& plan, const std::string& layer) {
  const ModelConfig& c = plan.config;
  if (!c.is_moe()) {
    const std::string mlp = layer + ".mlp";
    auto input = std::make_shared<ColumnInput>(plan.group, plan.sequence_parallel);
    if (s.has(mlp + ".gate_proj")) s.column(mlp, "gate_proj", split(c.intermediate_size), input);
    s.column(mlp, "up_proj", split(c.intermediate_size), input);
    s.row(mlp, "down_proj", plan.sequence_parallel);
    return;
  }
  const std::string moe = layer + ".block_sparse_moe";
  for (int64_t e = 0; e < c.num_local_experts; ++e) {
    // Inside the block, tokens are whole on every rank even with sequence parallel (see below).
    const std::string expert = moe + ".experts." + std::to_string(e);
    auto input = std::make_shared<ColumnInput>(plan.group, /*sequence_parallel=*/false);
    s.column(expert, "w1", split(c.intermediate_size), input);
    s.column(expert, "w3", split(c.intermediate_size), input);
    s.row(expert, "w2", /*sequence_parallel=*/false);
  }
  if (plan.sequence_parallel) {
    auto block = std::dynamic_pointer_cast<MoeBlock>(s.module(moe));
    check(block != nullptr, "tensor parallel: '{}' is not a mixture-of-experts block", moe);
    s.module(layer)->replace_module("block_sparse_moe", std::make_shared<SequenceParallelMoeImpl>(block, plan.group));
  }
  // The router runs on every token on every rank (whole tokens inside the block), so its gradient
  // is whole everywhere, with or without sequence parallel.
  plan.shards.at(moe + ".gate.weight").grad_is_partial = false;
}

void shard_vocabulary(Sharder& s, TensorParallelPlan& plan, CausalLM& model) {
  const ModelConfig& c = plan.config;
  const int64_t slice = (c.vocab_size + plan.size - 1) / plan.size;
  plan.vocab_start = plan.rank * slice;
  const int64_t valid = std::min(slice, c.vocab_size - plan.vocab_start);
  const ShardSpec vocab = split(c.vocab_size);

  auto* embedding = dynamic_cast<torch::nn::EmbeddingImpl*>(s.module("model.embed_tokens").get());
  check(embedding != nullptr, "tensor parallel: model.embed_tokens is not an Embedding");
  auto parallel_embedding = std::make_shared<VocabParallelEmbeddingImpl>(
      s.piece(embedding->weight, vocab), plan.vocab_start, valid, c.vocab_size, plan.group, plan.sequence_parallel);
  s.module("model")->replace_module("embed_tokens", parallel_embedding);
  plan.shards["model.embed_tokens.weight"] = vocab;

  if (plan.sequence_parallel && s.has("model.embed_positions")) {
    auto* positions = dynamic_cast<torch::nn::EmbeddingImpl*>(s.module("model.embed_positions").get());
    check(positions != nullptr, "tensor parallel: model.embed_positions is not an Embedding");
    torch::Tensor table = positions->weight.detach().clone();
    s.module("model")->replace_module("embed_positions",
                                      std::make_shared<SequenceSlicedEmbeddingImpl>(table, plan.group));
  }

  auto input = std::make_shared<ColumnInput>(plan.group, plan.sequence_parallel);
  if (c.tie_word_embeddings) {
    // The output projection reads the embedding's own shard (not a parameter of the head).
    model->register_module("lm_head", std::make_shared<ColumnParallelLinearImpl>(
                                          parallel_embedding->weight(), torch::Tensor(), input, valid,
                                          /*register_weight=*/false));
    return;
  }
  auto& head = s.linear("", "lm_head");
  check(!head.bias.defined(), "tensor parallel: an lm_head with a bias is not supported");
  model->replace_module("lm_head",
                        std::make_shared<ColumnParallelLinearImpl>(s.piece(head.weight, vocab), torch::Tensor(), input, valid));
  plan.shards["lm_head.weight"] = vocab;
}

}  // namespace forma::parallel::tensor_parallel_model_detail

namespace forma::parallel {

void check_tensor_parallel_config(const ModelConfig& c, int tp) {
  check(tp >= 1, "tensor_parallel must be >= 1, got {}", tp);
  const std::string& where = c.source.empty() ? std::string("the model config") : c.source;
  check(c.num_attention_heads % tp == 0, "{}: num_attention_heads={} is not divisible by tensor_parallel={}", where,
        c.num_attention_heads, tp);
  const int64_t kv = c.num_key_value_heads;
  check(kv > 0 && (kv % tp == 0 || tp % kv == 0),
        "{}: num_key_value_heads={} and tensor_parallel={}: one must divide the other (the key-value heads are "
        "split over the ranks, or each replicated on tensor_parallel / num_key_value_heads ranks)",
        where, kv, tp);
  check(c.intermediate_size % tp == 0, "{}: intermediate_size={} is not divisible by tensor_parallel={}", where,
        c.intermediate_size, tp);
  // Padding gives every rank ceil(V / tp) rows; the last rank must still own at least one id.
  const int64_t slice = (c.vocab_size + tp - 1) / tp;
  check(c.vocab_size > (tp - 1) * slice,
        "{}: vocab_size={} is too small to split over tensor_parallel={} ranks ({} ids each)", where, c.vocab_size,
        tp, slice);
}

TensorParallelPlan parallelize_tensor(CausalLM& model, const GroupPtr& tp_group, const TensorParallelOptions& options) {
  namespace detail = tensor_parallel_model_detail;
  TensorParallelPlan plan;
  plan.group = tp_group;
  plan.size = tp_group->getSize();
  plan.rank = tp_group->getRank();
  plan.sequence_parallel = options.sequence_parallel;
  plan.config = model->config();
  check_tensor_parallel_config(plan.config, plan.size);
  // Everything starts whole on every rank; the sharder records what it splits. With sequence
  // parallel, whole parameters see only this rank's tokens: partial gradients.
  for (const auto& p : model->named_parameters()) {
    plan.shards[p.key()] = ShardSpec{-1, 0, plan.size, options.sequence_parallel && plan.size > 1};
  }
  detail::Sharder sharder(model, plan);
  for (int64_t i = 0; i < plan.config.num_hidden_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i);
    detail::shard_attention(sharder, plan, layer);
    detail::shard_feed_forward(sharder, plan, layer);
  }
  detail::shard_vocabulary(sharder, plan, model);
  auto params = model->named_parameters();
  check(params.size() == plan.shards.size(), "tensor parallel: {} parameters after sharding, {} planned",
        params.size(), plan.shards.size());
  for (const auto& p : params) {
    check(plan.shards.count(p.key()) > 0, "tensor parallel: parameter '{}' has no plan", p.key());
  }
  return plan;
}

}  // namespace forma::parallel
