"""Writes tiny models in the configurations the hf-zoo fixtures do not use, and transformers'
logits for them: the oracle of neox_family_test.cpp.  Usage: neox_family_reference.py OUT_DIR

gpt_neox_sequential/: use_parallel_residual false (the sequential block), written in transformers
  4's spelling (rotary_pct 0.5, rotary_emb_base 1000) after save_pretrained.
gptj_full_rotary/: rotary_dim = head_dim 8 (every dim of the head rotates, on adjacent pairs).
cohere_bias/: attention_bias true, logit_scale 0.5.
The script checks that transformers reads each rewritten config into the same model (same logits)
before writing the reference."""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, CohereConfig, CohereForCausalLM, GPTJConfig, GPTJForCausalLM,
                          GPTNeoXConfig, GPTNeoXForCausalLM)

out = sys.argv[1]
torch.manual_seed(0)
ids = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def neox_v4_spelling(c):
    c.pop("rope_parameters", None)
    c.pop("partial_rotary_factor", None)
    c.update(rotary_pct=0.5, rotary_emb_base=1000)


models = {
    "gpt_neox_sequential": (GPTNeoXForCausalLM,
                            GPTNeoXConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, max_position_embeddings=64,
                                          use_parallel_residual=False, rotary_pct=0.5, rotary_emb_base=1000,
                                          initializer_range=0.2, **ids),
                            neox_v4_spelling),
    "gptj_full_rotary": (GPTJForCausalLM,
                         GPTJConfig(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=8,
                                    initializer_range=0.2, **ids),
                         None),
    "cohere_bias": (CohereForCausalLM,
                    CohereConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                 attention_bias=True, logit_scale=0.5, initializer_range=0.2, **ids),
                    None),
}
input_ids = torch.randint(3, 64, (2, 20))
for name, (cls, config, rewrite) in models.items():
    config._attn_implementation = "eager"
    model = cls(config).eval()
    with torch.no_grad():  # norms and biases start at 1 / 0: move them so a skipped one shows
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    path = os.path.join(out, name)
    model.save_pretrained(path)
    if rewrite:
        with open(os.path.join(path, "config.json")) as f:
            c = json.load(f)
        rewrite(c)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(c, f, indent=2)
    with torch.no_grad():
        logits = model(input_ids).logits
        again = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
        assert torch.equal(again(input_ids).logits, logits), name + ": the rewritten config means another model"
    save_file({"input_ids": input_ids, "logits": logits.contiguous()}, os.path.join(path, "reference.safetensors"))
