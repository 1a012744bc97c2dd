"""Writes two tiny models in the config spellings the hf-zoo fixtures do not use, and transformers'
logits for them: the oracle of gemma_family_test.cpp.  Usage: gemma_family_reference.py OUT_DIR

gemma2/: no layer_types (HF's default pattern: even layers slide), no query_pre_attn_scalar (256),
  no soft-caps (null), 5 layers, window 4.
gemma3/: transformers 4's spelling (rope_theta + rope_scaling for the global layers,
  rope_local_base_freq for the sliding ones, sliding_window_pattern 3 instead of layer_types),
  5 layers, window 4.
Each config.json is rewritten by hand after save_pretrained; the script checks that transformers
reads the rewritten file into the same model (same logits) before writing the reference."""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

out = sys.argv[1]
torch.manual_seed(0)
common = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=5, num_attention_heads=4,
              num_key_value_heads=2, head_dim=8, max_position_embeddings=64, sliding_window=4,
              initializer_range=0.2, attn_implementation="eager", bos_token_id=1, eos_token_id=2, pad_token_id=0)
models = {
    "gemma2": (Gemma2ForCausalLM, Gemma2Config(attn_logit_softcapping=None, final_logit_softcapping=None, **common),
               lambda c: [c.pop(k, None) for k in ("layer_types", "query_pre_attn_scalar")]),
    "gemma3": (Gemma3ForCausalLM,
               Gemma3TextConfig(query_pre_attn_scalar=12, sliding_window_pattern=3,
                                rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0,
                                                                    "rope_theta": 1e6},
                                                 "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
                                **common),
               None),
}


def gemma3_v4_spelling(c):
    c.pop("layer_types")
    c.pop("rope_parameters")
    c.pop("_sliding_window_pattern", None)
    c.update(rope_theta=1e6, rope_scaling={"rope_type": "linear", "factor": 4.0}, rope_local_base_freq=1e4,
             sliding_window_pattern=3)


models["gemma3"] = models["gemma3"][:2] + (gemma3_v4_spelling,)
input_ids = torch.randint(3, 64, (2, 20))
for name, (cls, config, rewrite) in models.items():
    model = cls(config).eval()
    with torch.no_grad():  # the (1 + w) norms start at 0: move them so a skipped one shows
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    path = os.path.join(out, name)
    model.save_pretrained(path)
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    rewrite(c)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    with torch.no_grad():
        logits = model(input_ids).logits
        again = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
        assert torch.equal(again(input_ids).logits, logits), name + ": the rewritten config means another model"
        assert again.config.layer_types == model.config.layer_types, name
    save_file({"input_ids": input_ids, "logits": logits.contiguous()}, os.path.join(path, "reference.safetensors"))
