"""Writes tiny Falcon and BLOOM models in the layouts the hf-zoo fixtures do not use, and
transformers' logits for them, plus HF's ALiBi slopes: the oracle of falcon_bloom_test.cpp.
Usage: falcon_bloom_reference.py OUT_DIR

falcon_sequential/: parallel_attn false (input_layernorm, then post_attention_layernorm), multi_query,
  bias true (every linear biased).
falcon_per_head/: multi_query false: query_key_value interleaved per head [q_h | k_h | v_h].
falcon_40b_one_norm/: new_decoder_architecture with 2 kv groups and num_ln_in_parallel_attn 1 (one
  input_layernorm feeds attention and MLP).
bloom_6_heads/: 6 heads, a count that is not a power of two (slopes from two geometric series).
alibi_slopes.safetensors: slopes.N = HF bloom's _get_alibi_slopes(N) for N in 1..40."""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BloomConfig, BloomForCausalLM, FalconConfig, FalconForCausalLM
from transformers.models.bloom.modeling_bloom import _get_alibi_slopes

out = sys.argv[1]
torch.manual_seed(0)
ids = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
falcon = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_hidden_size=64,
              max_position_embeddings=64, initializer_range=0.2, **ids)

models = {
    "falcon_sequential": (FalconForCausalLM, FalconConfig(parallel_attn=False, multi_query=True, bias=True, **falcon)),
    "falcon_per_head": (FalconForCausalLM, FalconConfig(multi_query=False, **falcon)),
    "falcon_40b_one_norm": (FalconForCausalLM, FalconConfig(new_decoder_architecture=True, num_kv_heads=2,
                                                            num_ln_in_parallel_attn=1, **falcon)),
    "bloom_6_heads": (BloomForCausalLM, BloomConfig(vocab_size=64, hidden_size=48, n_layer=2, n_head=6,
                                                    initializer_range=0.2, **ids)),
}
input_ids = torch.randint(3, 64, (2, 20))
for name, (cls, config) in models.items():
    config._attn_implementation = "eager"
    model = cls(config).eval()
    with torch.no_grad():  # norms and biases start at 1 / 0: move them so a skipped one shows
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    path = os.path.join(out, name)
    model.save_pretrained(path)
    with torch.no_grad():
        logits = model(input_ids).logits
    save_file({"input_ids": input_ids, "logits": logits.contiguous()}, os.path.join(path, "reference.safetensors"))

save_file({f"slopes.{n}": _get_alibi_slopes(n, torch.device("cpu")).contiguous() for n in range(1, 41)},
          os.path.join(out, "alibi_slopes.safetensors"))
