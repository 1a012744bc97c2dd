"""Tiny configs for tests/fixtures/hf-zoo (used by make_hf_fixtures.py / check_hf_fixtures.py).

Each spec: name (fixture dir), model_type, config kwargs (the config class's own parameter names),
features (what the fixture exercises, copied into reference.json and the README), router (MoE
settings, recorded), optional grad_attn/grad_norm (parameter names whose gradients are stored).
Sizes are tiny (vocab 256, hidden 32, 4 heads of 8) but every distinguishing switch is on.
"""

VOCAB = 256
SW = 8  # sliding window: the 16-token prompt plus 8 generated tokens crosses it

COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
              initializer_range=0.2)


def llama_like(**over):
    d = dict(COMMON)
    d.update(over)
    return d


def rope(rope_type="default", theta=10000.0, **kw):
    d = {"rope_type": rope_type, "rope_theta": theta}
    d.update(kw)
    return d


SPECS = [
    # --- the five forma already has -------------------------------------------------------------
    dict(name="gpt2", model_type="gpt2",
         config=dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     initializer_range=0.2, activation_function="gelu_new"),
         features="learned absolute positions, LayerNorm with bias, fused Conv1D c_attn [in,out], "
                  "gelu_new, tied lm_head"),
    dict(name="llama", model_type="llama",
         config=llama_like(tie_word_embeddings=False, head_dim=8),
         features="RoPE theta 1e4, RMSNorm, SiLU-gated MLP, GQA 4q/2kv, untied lm_head"),
    dict(name="mistral", model_type="mistral",
         config=llama_like(sliding_window=SW, tie_word_embeddings=False, head_dim=8),
         features=f"sliding_window {SW} on every layer (prompt 16 + 8 generated crosses it), GQA"),
    dict(name="qwen2", model_type="qwen2",
         config=llama_like(tie_word_embeddings=True),
         features="q/k/v bias, no sliding window, tied lm_head"),
    dict(name="qwen2_sliding", model_type="qwen2",
         config=llama_like(num_hidden_layers=3, use_sliding_window=True, sliding_window=SW,
                           max_window_layers=1, tie_word_embeddings=False),
         features=f"use_sliding_window with max_window_layers 1: layer 0 full attention, layers 1-2 "
                  f"sliding window {SW} (per-layer layer_types as HF derives them)"),
    dict(name="mixtral", model_type="mixtral",
         config=llama_like(intermediate_size=32, num_local_experts=4, num_experts_per_tok=2, head_dim=8,
                           rope_parameters=rope(theta=1e6), tie_word_embeddings=False),
         router=dict(num_local_experts=4, num_experts_per_tok=2, scoring="softmax, top-k, renormalise",
                     output_router_logits=False),
         features="sparse MoE 4 experts top-2 (softmax, top-k, renormalise), rope theta 1e6"),
    # --- Gemma family ---------------------------------------------------------------------------
    dict(name="gemma", model_type="gemma",
         config=llama_like(head_dim=8, hidden_act="gelu_pytorch_tanh",
                           hidden_activation="gelu_pytorch_tanh", num_key_value_heads=1),
         features="embeddings scaled by sqrt(hidden), RMSNorm (1+w), GeGLU (gelu tanh), MQA, tied"),
    dict(name="gemma2", model_type="gemma2",
         config=llama_like(head_dim=8, num_hidden_layers=3, sliding_window=SW,
                           attn_logit_softcapping=5.0, final_logit_softcapping=3.0,
                           query_pre_attn_scalar=16),
         features=f"attention logit soft-cap 5, final logit soft-cap 3, alternating sliding window "
                  f"{SW} (even layers) / global, pre+post attn/ffw RMSNorm (1+w), "
                  "query_pre_attn_scalar 16 (scale != head_dim), sqrt(hidden) embedding scale"),
    dict(name="gemma3", model_type="gemma3_text",
         config=llama_like(head_dim=8, num_hidden_layers=3, sliding_window=SW,
                           layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                           query_pre_attn_scalar=16, final_logit_softcapping=None,
                           attn_logit_softcapping=None,
                           rope_parameters={
                               "full_attention": rope("linear", 1e6, factor=8.0),
                               "sliding_attention": rope("default", 1e4)}),
         features=f"Gemma3ForCausalLM (text): q/k RMSNorm, sliding {SW} / full per layer_types, "
                  "local rope theta 1e4 vs global theta 1e6 with linear scaling 8, pre+post norms, "
                  "sqrt(hidden) embedding scale"),
    # --- Phi ------------------------------------------------------------------------------------
    dict(name="phi", model_type="phi",
         config=dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                     initializer_range=0.2, partial_rotary_factor=0.5, qk_layernorm=False,
                     tie_word_embeddings=False),
         features="parallel attention + MLP from one LayerNorm, partial rotary 0.5 (4 of 8 dims), "
                  "q/k/v/dense bias, gelu_new fc1/fc2 MLP, lm_head with bias, final LayerNorm"),
    dict(name="phi3", model_type="phi3",
         config=llama_like(num_key_value_heads=2, tie_word_embeddings=False),
         features="fused qkv_proj and gate_up_proj, RMSNorm, GQA"),
    dict(name="phi3_longrope", model_type="phi3",
         config=llama_like(num_key_value_heads=2, tie_word_embeddings=False,
                           max_position_embeddings=64, original_max_position_embeddings=8,
                           rope_parameters=rope("longrope", 1e4,
                                                short_factor=[1.0, 1.5, 2.0, 3.0],
                                                long_factor=[1.0, 2.0, 4.0, 8.0],
                                                original_max_position_embeddings=8)),
         features="longrope rope_scaling: original_max_position_embeddings 8 < every sequence here, "
                  "so long_factor is used throughout, attention factor sqrt(1+ln(8)/ln(8))"),
    # --- Qwen MoE / Qwen3 -----------------------------------------------------------------------
    dict(name="qwen2_moe", model_type="qwen2_moe",
         config=llama_like(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                           shared_expert_intermediate_size=32, decoder_sparse_step=1,
                           norm_topk_prob=False, tie_word_embeddings=False),
         router=dict(num_experts=4, num_experts_per_tok=2, norm_topk_prob=False,
                     shared_expert="sigmoid(shared_expert_gate(x)) * shared_expert(x)",
                     output_router_logits=False),
         features="MoE 4 experts top-2 (softmax, no renormalisation) + shared expert scaled by "
                  "its sigmoid gate, q/k/v bias"),
    dict(name="qwen3", model_type="qwen3",
         config=llama_like(head_dim=16, tie_word_embeddings=False),
         features="q/k RMSNorm per head before RoPE, head_dim 16 != hidden/heads, no qkv bias"),
    dict(name="qwen3_moe", model_type="qwen3_moe",
         config=llama_like(head_dim=8, num_experts=4, num_experts_per_tok=2,
                           moe_intermediate_size=16, decoder_sparse_step=1, norm_topk_prob=True,
                           tie_word_embeddings=False),
         router=dict(num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
                     output_router_logits=False),
         features="QK-norm + MoE 4 experts top-2 with renormalised top-k weights, no shared expert"),
    # --- OLMo -----------------------------------------------------------------------------------
    dict(name="olmo", model_type="olmo",
         config=llama_like(num_key_value_heads=4, clip_qkv=0.5, tie_word_embeddings=False),
         features="non-parametric LayerNorm (no weight/bias), clip_qkv 0.5"),
    dict(name="olmo2", model_type="olmo2",
         config=llama_like(num_key_value_heads=4, tie_word_embeddings=False),
         features="post-norm residual (norm after attn/MLP), q/k RMSNorm over all heads"),
    dict(name="olmoe", model_type="olmoe",
         config=llama_like(num_key_value_heads=4, num_experts=4, num_experts_per_tok=2,
                           intermediate_size=16, norm_topk_prob=False, clip_qkv=None,
                           tie_word_embeddings=False),
         router=dict(num_experts=4, num_experts_per_tok=2, norm_topk_prob=False,
                     output_router_logits=False),
         features="MoE 4 experts top-2 (softmax, no renorm), q/k RMSNorm over all heads"),
    # --- code / StabilityAI / EleutherAI ----------------------------------------------------------
    dict(name="starcoder2", model_type="starcoder2",
         config=llama_like(sliding_window=SW, use_bias=True, hidden_act="gelu_pytorch_tanh",
                           norm_epsilon=1e-5),
         features=f"LayerNorm with bias, bias on all linears, c_fc/c_proj gelu MLP, sliding window "
                  f"{SW}, GQA, tied"),
    dict(name="stablelm", model_type="stablelm",
         config=llama_like(partial_rotary_factor=0.25, use_qkv_bias=True, qk_layernorm=True,
                           use_parallel_residual=False, tie_word_embeddings=False),
         features="LayerNorm with bias, partial rotary 0.25 (2 of 8 dims), qkv bias, per-head q/k "
                  "LayerNorm (qk_layernorm)"),
    dict(name="gpt_neox", model_type="gpt_neox",
         config=dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=64, initializer_range=0.2,
                     rotary_pct=0.5, partial_rotary_factor=0.5, use_parallel_residual=True,
                     tie_word_embeddings=False),
         features="parallel residual x + attn(ln1 x) + mlp(ln2 x), partial rotary 0.5, fused "
                  "query_key_value interleaved per head, embed_out"),
    dict(name="gptj", model_type="gptj",
         config=dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     rotary_dim=4, initializer_range=0.2, tie_word_embeddings=False),
         features="parallel attn+MLP from one LayerNorm, interleaved (rotate-every-two) partial "
                  "rotary dim 4, no qkv bias, lm_head with bias"),
    # --- Falcon / Bloom / BigCode ---------------------------------------------------------------
    dict(name="falcon_7b", model_type="falcon",
         config=dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     multi_query=True, parallel_attn=True, new_decoder_architecture=False,
                     bias=False, alibi=False, max_position_embeddings=64, initializer_range=0.2),
         features="7B layout: multi_query (1 kv head), parallel attn+MLP from one LayerNorm, no "
                  "linear bias, fused query_key_value, rotary, tied"),
    dict(name="falcon_40b", model_type="falcon",
         config=dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     num_kv_heads=2, new_decoder_architecture=True, parallel_attn=True,
                     num_ln_in_parallel_attn=2, bias=False, alibi=False,
                     max_position_embeddings=64, initializer_range=0.2),
         features="new_decoder_architecture (40B): 2 kv groups, ln_attn + ln_mlp, grouped fused "
                  "query_key_value layout, parallel attn+MLP, tied"),
    dict(name="bloom", model_type="bloom",
         config=dict(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, initializer_range=0.2),
         features="ALiBi (no position embeddings), word_embeddings_layernorm, fused "
                  "query_key_value per head, gelu, tied"),
    dict(name="gpt_bigcode", model_type="gpt_bigcode",
         config=dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     multi_query=True, initializer_range=0.2, activation_function="gelu_pytorch_tanh"),
         features="MQA: c_attn as nn.Linear giving [q (32) | k (8) | v (8)], learned positions, tied"),
    # --- Cohere / Granite / Nemotron ------------------------------------------------------------
    dict(name="cohere", model_type="cohere",
         config=llama_like(logit_scale=0.25, use_qk_norm=False),
         features="parallel attn+MLP from one LayerNorm without bias, logit_scale 0.25, "
                  "interleaved rotary, tied"),
    dict(name="granite", model_type="granite",
         config=llama_like(embedding_multiplier=4.0, residual_multiplier=0.5,
                           attention_multiplier=0.3, logits_scaling=2.0, tie_word_embeddings=False),
         features="embedding_multiplier 4, residual_multiplier 0.5, attention_multiplier 0.3 "
                  "(replaces 1/sqrt(d)), logits divided by logits_scaling 2"),
    dict(name="nemotron", model_type="nemotron",
         config=llama_like(hidden_act="relu2", partial_rotary_factor=0.5, norm_eps=1e-5,
                           tie_word_embeddings=False),
         features="squared ReLU MLP (up/down, no gate), LayerNorm1P (weight+1, with bias), "
                  "partial rotary 0.5"),
    # --- GLM ------------------------------------------------------------------------------------
    dict(name="glm", model_type="glm",
         config=llama_like(head_dim=8, partial_rotary_factor=0.5, attention_bias=True,
                           tie_word_embeddings=False),
         features="fused gate_up_proj, interleaved partial rotary 0.5, q/k/v bias"),
    dict(name="glm4", model_type="glm4",
         config=llama_like(head_dim=8, partial_rotary_factor=0.5, attention_bias=True,
                           tie_word_embeddings=False),
         features="GLM plus post_self_attn_layernorm and post_mlp_layernorm (sandwich norms)"),
    # --- DeepSeek -------------------------------------------------------------------------------
    dict(name="deepseek_v2", model_type="deepseek_v2",
         config=llama_like(num_hidden_layers=3, num_key_value_heads=4, q_lora_rank=None,
                           kv_lora_rank=16, qk_rope_head_dim=4, qk_nope_head_dim=8, v_head_dim=8,
                           n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                           moe_intermediate_size=8, first_k_dense_replace=1,
                           topk_method="group_limited_greedy", n_group=2, topk_group=1,
                           routed_scaling_factor=1.5, norm_topk_prob=False,
                           tie_word_embeddings=False),
         grad_attn="model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
         router=dict(n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                     topk_method="group_limited_greedy", n_group=2, topk_group=1,
                     routed_scaling_factor=1.5, scoring="softmax", first_k_dense_replace=1),
         features="MLA without q LoRA (V2-Lite style: q_proj, kv_a_proj_with_mqa, kv_a_layernorm, "
                  "kv_b_proj; rope 4 + nope 8 dims, v 8), MoE 8 routed + 1 shared, group-limited "
                  "greedy (2 groups of 4 scored by their max, 1 kept) top-2 softmax, scaling 1.5, "
                  "layer 0 dense"),
    dict(name="deepseek_v3", model_type="deepseek_v3",
         config=llama_like(num_hidden_layers=3, num_key_value_heads=4, q_lora_rank=16,
                           kv_lora_rank=16, qk_rope_head_dim=4, qk_nope_head_dim=8, v_head_dim=8,
                           n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                           moe_intermediate_size=8, first_k_dense_replace=1, n_group=4,
                           topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True,
                           rope_interleave=True, tie_word_embeddings=False),
         grad_attn="model.layers.0.self_attn.q_a_proj.weight",
         router=dict(n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, n_group=4,
                     topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True,
                     scoring="sigmoid + e_score_correction_bias for selection (noaux_tc)",
                     first_k_dense_replace=1),
         features="MLA with q LoRA (q_a_proj, q_a_layernorm, q_b_proj), interleaved rope, MoE 8 "
                  "routed (sigmoid scores + correction bias; 4 groups scored by top-2 sum, 2 kept; "
                  "top-2 renormalised) + 1 shared, routed_scaling_factor 2.5, layer 0 dense"),
    # --- Llama RoPE scalings --------------------------------------------------------------------
    dict(name="llama_rope_linear", model_type="llama",
         config=llama_like(head_dim=16, num_attention_heads=2, num_key_value_heads=1,
                           rope_parameters=rope("linear", factor=2.0), tie_word_embeddings=False),
         features="rope_scaling linear factor 2 (positions / 2)"),
    dict(name="llama_rope_dynamic", model_type="llama",
         config=llama_like(head_dim=16, num_attention_heads=2, num_key_value_heads=1,
                           max_position_embeddings=12,
                           rope_parameters=rope("dynamic", factor=2.0), tie_word_embeddings=False),
         features="rope_scaling dynamic NTK factor 2 with max_position_embeddings 12: the 16-token "
                  "forward is rescaled; generation re-scales as it grows (HF keeps cached keys)"),
    dict(name="llama_rope_yarn", model_type="llama",
         config=llama_like(head_dim=16, num_attention_heads=2, num_key_value_heads=1,
                           rope_parameters=rope("yarn", factor=4.0, original_max_position_embeddings=16),
                           tie_word_embeddings=False),
         features="rope_scaling yarn factor 4, original_max_position_embeddings 16, beta_fast 32 / "
                  "beta_slow 1 (defaults), attention_scaling 0.1 ln(4) + 1 applied to cos/sin"),
    dict(name="llama_rope_llama3", model_type="llama",
         config=llama_like(head_dim=16, num_attention_heads=2, num_key_value_heads=1,
                           max_position_embeddings=256,
                           rope_parameters=rope("llama3", factor=8.0, low_freq_factor=1.0,
                                                high_freq_factor=4.0,
                                                original_max_position_embeddings=64),
                           tie_word_embeddings=False),
         features="rope_scaling llama3 factor 8, low 1, high 4, original 64: head_dim 16 gives "
                  "frequencies in all three bands (unscaled, smoothed, divided by 8)"),
]
