#include "forma/peft/lora_plan.h"

#include "forma/core/error.h"
#include "forma/model/architecture.h"
#include "forma/model/hf_names.h"

namespace forma::peft {

std::vector<PlannedLinear> planned_linears(const ModelConfig& c) {
  const Architecture& arch = architecture_for(c);
  std::vector<std::string> names;
  std::vector<PlannedLinear> out;
  auto add = [&](const std::string& name, int64_t in, int64_t o) {
    names.push_back(name);
    out.push_back({{}, in, o});
  };
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    if (c.kv_lora_rank > 0) {  // multi-head latent attention (mla_attention.h)
      const int64_t H = c.num_attention_heads, qk = H * (c.qk_nope_head_dim + c.head_dim);
      if (c.q_lora_rank > 0) {
        add(l + "self_attn.q_a_proj", c.hidden_size, c.q_lora_rank);
        add(l + "self_attn.q_b_proj", c.q_lora_rank, qk);
      } else {
        add(l + "self_attn.q_proj", c.hidden_size, qk);
      }
      add(l + "self_attn.kv_a_proj_with_mqa", c.hidden_size, c.kv_lora_rank + c.head_dim);
      add(l + "self_attn.kv_b_proj", c.kv_lora_rank, H * (c.qk_nope_head_dim + c.v_head_dim));
      add(l + "self_attn.o_proj", H * c.v_head_dim, c.hidden_size);
    } else {
      add(l + "self_attn.q_proj", c.hidden_size, q);
      add(l + "self_attn.k_proj", c.hidden_size, kv);
      add(l + "self_attn.v_proj", c.hidden_size, kv);
      add(l + "self_attn.o_proj", q, c.hidden_size);
    }
    if (c.layer_is_sparse(i)) {
      add(l + "block_sparse_moe.gate", c.hidden_size, c.num_local_experts);
      for (int64_t e = 0; e < c.num_local_experts; ++e) {
        const std::string x = l + "block_sparse_moe.experts." + std::to_string(e) + ".";
        add(x + "w1", c.hidden_size, c.intermediate_size);
        add(x + "w2", c.intermediate_size, c.hidden_size);
        add(x + "w3", c.hidden_size, c.intermediate_size);
      }
      if (c.shared_expert_intermediate_size > 0) {
        const std::string x = l + "block_sparse_moe.shared_expert.";
        add(x + "gate_proj", c.hidden_size, c.shared_expert_intermediate_size);
        add(x + "up_proj", c.hidden_size, c.shared_expert_intermediate_size);
        add(x + "down_proj", c.shared_expert_intermediate_size, c.hidden_size);
        if (!c.shared_expert_ungated) add(l + "block_sparse_moe.shared_expert_gate", c.hidden_size, 1);
      }
    } else {
      // A dense layer of an MoE model (qwen2_moe's mlp_only_layers) has its own width.
      const int64_t width = c.is_moe() ? c.dense_intermediate_size : c.intermediate_size;
      if (arch.gated_mlp) add(l + "mlp.gate_proj", c.hidden_size, width);
      add(l + "mlp.up_proj", c.hidden_size, width);
      add(l + "mlp.down_proj", width, c.hidden_size);
    }
  }
  if (!c.tie_word_embeddings) add("lm_head", c.hidden_size, c.vocab_size);
  const std::vector<HfModule> hf = hf_modules_of(c, names);  // the rules expanded once, not per name
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].module = {names[i], hf[i].hf_name, hf[i].part, hf[i].parts, hf[i].transposed};
  }
  return out;
}

LoraPlan plan_lora(const ModelConfig& config, const LoraConfig& lora, const std::string& where) {
  validate(lora, where);
  LoraPlan plan;
  for (const auto& l : planned_linears(config)) {
    if (matches_modules_to_save(lora, l.module.hf_name)) continue;
    const bool targeted = lora.all_linear ? l.module.name != "lm_head" : matches_target(lora, l.module.hf_name);
    if (!targeted) continue;
    ++plan.layers;
    plan.adapter_params += lora.rank_for(l.module.hf_name) * (l.in + l.out);
  }
  check(plan.layers > 0, "{}: the targets match no linear layer of this {} model", where, config.model_type);
  return plan;
}

}  // namespace forma::peft
