#include "forma/parallel/tensor_parallel_model.h"

#include <set>

#include "forma/core/error.h"
#include "forma/parallel/tensor_parallel_layers.h"
#include "forma/parallel/tp_regions.h"
#include "forma/peft/lora_linear.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::parallel::tensor_parallel_model_detail {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

// Replaces a model's children by their parallel counterparts holding the pieces the plan's specs say.
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

  // A LoRA layer (peft/lora_linear.h) stays itself: its tensors become this rank's pieces (set_data
  // keeps the parameters, and so their names) and it computes the parallel layer's math.
  peft::LoraLinearImpl* lora(const std::string& name) {
    return dynamic_cast<peft::LoraLinearImpl*>(module(name).get());
  }
  void set_piece(torch::Tensor& t, const std::string& name) {
    torch::NoGradGuard no_grad;
    t.set_data(piece(t, plan_.shards.at(name)));
  }

  // Output features split as the plan says (dim 0 of the weight and of the bias).
  void column(const std::string& parent, const std::string& child, std::shared_ptr<ColumnInput> input) {
    const std::string name = parent + "." + child;
    if (auto* adapted = lora(name)) {
      planned(name + ".weight", 0);
      set_piece(adapted->weight, name + ".weight");
      if (adapted->bias.defined()) set_piece(adapted->bias, name + ".bias");
      set_piece(adapted->lora_B, name + ".lora_B.weight");  // A stays whole
      adapted->enter = [input](const torch::Tensor& x) { return input->enter(x); };
      return;
    }
    auto& full = linear(parent, child);
    const ShardSpec& spec = planned(name + ".weight", 0);
    torch::Tensor bias;
    if (full.bias.defined()) bias = piece(full.bias, planned(name + ".bias", 0));
    module(parent)->replace_module(
        child, std::make_shared<ColumnParallelLinearImpl>(piece(full.weight, spec), bias, std::move(input)));
  }

  // Whole on every rank, reading `input` where it enters the parallel region (MLA's latent
  // projections): the parameters stay as they are, the layer computes on the entered input.
  void whole(const std::string& parent, const std::string& child, std::shared_ptr<ColumnInput> input) {
    const std::string name = parent + "." + child;
    planned(name + ".weight", -1);
    if (auto* adapted = lora(name)) {
      adapted->enter = [input](const torch::Tensor& x) { return input->enter(x); };
      return;
    }
    auto& full = linear(parent, child);
    torch::Tensor bias = full.bias.defined() ? full.bias.detach().clone() : torch::Tensor();
    module(parent)->replace_module(
        child, std::make_shared<ColumnParallelLinearImpl>(full.weight.detach().clone(), bias, std::move(input)));
  }

  // Input features split as the plan says; the bias stays whole (added after the reduction).
  void row(const std::string& parent, const std::string& child, bool sequence_parallel) {
    if (auto* adapted = lora(parent + "." + child)) return lora_row(*adapted, parent + "." + child, sequence_parallel);
    auto& full = linear(parent, child);
    const ShardSpec& spec = planned(parent + "." + child + ".weight", 1);
    torch::Tensor bias = full.bias.defined() ? full.bias.detach().clone() : torch::Tensor();
    module(parent)->replace_module(child, std::make_shared<RowParallelLinearImpl>(piece(full.weight, spec), bias,
                                                                                  plan_.group, sequence_parallel));
  }

  void lora_row(peft::LoraLinearImpl& adapted, const std::string& name, bool sequence_parallel) {
    const ShardSpec& spec = planned(name + ".weight", 1);
    set_piece(adapted.weight, name + ".weight");  // the bias stays whole
    set_piece(adapted.lora_A, name + ".lora_A.weight");  // B stays whole
    adapted.dropout_features = spec.full_size;
    adapted.dropout_offset = piece_range(spec, plan_.size, plan_.rank).start;
    GroupPtr group = plan_.group;
    constexpr int64_t kSequenceDim = -2;  // of [B, T, C], as in tensor_parallel_layers.cpp
    if (sequence_parallel) {
      adapted.leave = [group](const torch::Tensor& x) { return reduce_scatter_to_sequence_region(x, group, kSequenceDim); };
    } else {
      adapted.leave = [group](const torch::Tensor& x) { return reduce_from_tp_region(x, group); };
    }
  }

  // The spec tensor_parallel_shard_specs gave `name`, which must split it along `dim`.
  const ShardSpec& planned(const std::string& name, int64_t dim) const {
    auto it = plan_.shards.find(name);
    check(it != plan_.shards.end() && it->second.dim == dim,
          "tensor parallel: parameter '{}' is not planned to be split along dimension {}", name, dim);
    return it->second;
  }

 private:
  TensorParallelPlan& plan_;
  torch::OrderedDict<std::string, ModulePtr> modules_;
};

// Multi-head latent attention (mla_attention.h): x enters once for both latent projections, which
// stay whole; the up-projections of the (whole, identical) latents split by heads.
void shard_latent_attention(Sharder& s, const TensorParallelPlan& plan, const std::string& attn) {
  auto input = std::make_shared<ColumnInput>(plan.group, plan.sequence_parallel);
  auto latent = ColumnInput::already_entered(plan.group);
  if (s.has(attn + ".q_a_proj")) {
    s.whole(attn, "q_a_proj", input);
    s.column(attn, "q_b_proj", latent);
  } else {
    s.column(attn, "q_proj", input);
  }
  s.whole(attn, "kv_a_proj_with_mqa", input);
  s.column(attn, "kv_b_proj", latent);
  s.row(attn, "o_proj", plan.sequence_parallel);
}

void shard_attention(Sharder& s, const TensorParallelPlan& plan, const std::string& layer) {
  const std::string attn = layer + ".self_attn";
  if (plan.config.kv_lora_rank > 0) return shard_latent_attention(s, plan, attn);
  auto input = std::make_shared<ColumnInput>(plan.group, plan.sequence_parallel);
  s.column(attn, "q_proj", input);
  s.column(attn, "k_proj", input);
  s.column(attn, "v_proj", input);
  s.row(attn, "o_proj", plan.sequence_parallel);
  // ALiBi (config.alibi): each rank's heads take their own slopes, from its first head on.
  if (plan.config.alibi) {
    auto* attention = dynamic_cast<AttentionImpl*>(s.module(attn).get());
    check(attention != nullptr, "tensor parallel: '{}' is not an attention module", attn);
    attention->alibi_head_offset =
        piece_range(plan.shards.at(attn + ".q_proj.weight"), plan.size, plan.rank).start / plan.config.head_dim;
  }
  // Norms over all heads (config.qk_norm_whole): each rank holds its heads' part and the mean of
  // squares is summed over the ranks.
  if (plan.config.qk_norm_whole) {
    for (const char* norm_name : {"q_norm", "k_norm"}) {
      auto* norm = dynamic_cast<NormImpl*>(s.module(attn + "." + norm_name).get());
      check(norm != nullptr, "tensor parallel: '{}.{}' is not a norm", attn, norm_name);
      norm->full_size = norm->weight.size(0);
      s.set_piece(norm->weight, attn + "." + norm_name + ".weight");
      GroupPtr group = plan.group;
      norm->sum_across = [group](const torch::Tensor& x) { return sum_across_tp_region(x, group); };
    }
  }
  // Per-head norms (config.head_layernorm) stay whole: each rank applies those of its heads.
  for (const char* norms : {"q_layernorm", "k_layernorm"}) {
    if (!s.has(attn + "." + norms)) continue;
    auto* head_norms = dynamic_cast<HeadNormsImpl*>(s.module(attn + "." + norms).get());
    check(head_norms != nullptr, "tensor parallel: '{}.{}' is not a per-head norm", attn, norms);
    const char* proj = norms[0] == 'q' ? ".q_proj.weight" : ".k_proj.weight";
    head_norms->head_offset =
        piece_range(plan.shards.at(attn + proj), plan.size, plan.rank).start / plan.config.head_dim;
  }
}

void shard_feed_forward(Sharder& s, const TensorParallelPlan& plan, const std::string& layer) {
  const ModelConfig& c = plan.config;
  if (!s.has(layer + ".block_sparse_moe")) {  // dense models, and an MoE model's dense layers
    const std::string mlp = layer + ".mlp";
    auto input = std::make_shared<ColumnInput>(plan.group, plan.sequence_parallel);
    if (s.has(mlp + ".gate_proj")) s.column(mlp, "gate_proj", input);
    s.column(mlp, "up_proj", input);
    s.row(mlp, "down_proj", plan.sequence_parallel);
    return;
  }
  const std::string moe = layer + ".block_sparse_moe";
  for (int64_t e = 0; e < c.num_local_experts; ++e) {
    // Inside the block, tokens are whole on every rank even with sequence parallel (see below).
    const std::string expert = moe + ".experts." + std::to_string(e);
    auto input = std::make_shared<ColumnInput>(plan.group, /*sequence_parallel=*/false);
    s.column(expert, "w1", input);
    s.column(expert, "w3", input);
    s.row(expert, "w2", /*sequence_parallel=*/false);
  }
  if (s.has(moe + ".shared_expert")) {  // qwen2_moe: like a dense MLP, on the block's whole tokens
    const std::string shared = moe + ".shared_expert";
    auto input = std::make_shared<ColumnInput>(plan.group, /*sequence_parallel=*/false);
    s.column(shared, "gate_proj", input);
    s.column(shared, "up_proj", input);
    s.row(shared, "down_proj", /*sequence_parallel=*/false);
  }
  if (plan.sequence_parallel) {
    auto block = std::dynamic_pointer_cast<MoeBlock>(s.module(moe));
    check(block != nullptr, "tensor parallel: '{}' is not a mixture-of-experts block", moe);
    s.module(layer)->replace_module("block_sparse_moe", std::make_shared<SequenceParallelMoeImpl>(block, plan.group));
  }
}

void shard_vocabulary(Sharder& s, TensorParallelPlan& plan, CausalLM& model) {
  const ModelConfig& c = plan.config;
  const ShardSpec& vocab = s.planned("model.embed_tokens.weight", 0);
  const PieceRange ids = piece_range(vocab, plan.size, plan.rank);
  plan.vocab_start = ids.start;
  const int64_t valid = ids.length;

  auto* embedding = dynamic_cast<torch::nn::EmbeddingImpl*>(s.module("model.embed_tokens").get());
  check(embedding != nullptr, "tensor parallel: model.embed_tokens is not an Embedding");
  auto parallel_embedding = std::make_shared<VocabParallelEmbeddingImpl>(
      s.piece(embedding->weight, vocab), plan.vocab_start, valid, c.vocab_size, plan.group, plan.sequence_parallel);
  s.module("model")->replace_module("embed_tokens", parallel_embedding);

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
  check(s.lora("lm_head") == nullptr, "tensor parallel: LoRA on lm_head is not supported (the vocabulary-parallel "
        "head takes no adapter): leave lm_head out of lora.target_modules, or list it in lora.modules_to_save");
  auto& head = s.linear("", "lm_head");
  // A bias (phi) splits with the vocabulary rows.
  torch::Tensor bias = head.bias.defined() ? s.piece(head.bias, s.planned("lm_head.bias", 0)) : torch::Tensor();
  model->replace_module("lm_head", std::make_shared<ColumnParallelLinearImpl>(
                                       s.piece(head.weight, s.planned("lm_head.weight", 0)), bias, input, valid));
}

}  // namespace forma::parallel::tensor_parallel_model_detail

namespace forma::parallel {

TensorParallelPlan parallelize_tensor(CausalLM& model, const GroupPtr& tp_group, const TensorParallelOptions& options) {
  namespace detail = tensor_parallel_model_detail;
  TensorParallelPlan plan;
  plan.group = tp_group;
  plan.size = tp_group->getSize();
  plan.rank = tp_group->getRank();
  plan.sequence_parallel = options.sequence_parallel;
  plan.config = model->config();
  // Everything starts whole on every rank, then takes the spec the pure plan gives it (one source
  // of truth with checkpoints and offline resharding); the sharder splits what the specs split.
  for (const auto& p : model->named_parameters()) {
    plan.shards[p.key()] = whole_shard_spec(plan.size, options.sequence_parallel);
  }
  for (const auto& [name, spec] : tensor_parallel_shard_specs(plan.config, plan.size, options.sequence_parallel)) {
    check(plan.shards.count(name) > 0, "tensor parallel: the model has no parameter '{}' to split", name);
    plan.shards[name] = spec;
  }
  // LoRA adapters (put on before the split: the same initial values as in one process) follow
  // their base layer's split.
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    const std::string suffix = ".lora_A.weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string layer = name.substr(0, name.size() - suffix.size());
    const LoraSpecs lora = lora_shard_specs(plan.shards.at(layer + ".weight"), plan.size);
    plan.shards[name] = lora.a;
    plan.shards[layer + ".lora_B.weight"] = lora.b;
  }
  // The parallel layers register their pieces as new parameters (trainable): a frozen parameter (a
  // LoRA run's base) stays frozen.
  std::set<std::string> frozen;
  for (const auto& p : model->named_parameters()) {
    if (!p.value().requires_grad()) frozen.insert(p.key());
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
    if (frozen.count(p.key())) p.value().set_requires_grad(false);
  }
  return plan;
}

}  // namespace forma::parallel
