"""Writes a tiny StableLM with the variants the hf-zoo fixture does not use (use_parallel_residual,
qk_layernorm off, partial rotary 0.5) and transformers' logits for it: the oracle of
stablelm_variants_test.cpp.  Usage: stablelm_reference.py OUT_DIR"""
import sys

import torch
from safetensors.torch import save_file
from transformers import StableLmConfig, StableLmForCausalLM

out = sys.argv[1]
torch.manual_seed(0)
config = StableLmConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                        use_qkv_bias=True, qk_layernorm=False, use_parallel_residual=True,
                        partial_rotary_factor=0.5, initializer_range=0.2, tie_word_embeddings=False,
                        attn_implementation="eager")
model = StableLmForCausalLM(config).eval()
with torch.no_grad():  # LayerNorms start at weight 1, bias 0: move them so a skipped one shows
    for p in model.parameters():
        if p.dim() == 1:
            p.add_(0.1 * torch.randn_like(p))
model.save_pretrained(out)
input_ids = torch.randint(3, 64, (2, 12))
with torch.no_grad():
    logits = model(input_ids).logits
save_file({"input_ids": input_ids, "logits": logits.contiguous()}, out + "/reference.safetensors")
