"""transformers' RoPE initialisers on configs that the hf-zoo fixtures leave out: yarn with mscale /
mscale_all_dim, an explicit attention_factor, truncate false and partial rotary (phi); dynamic NTK at several
lengths; longrope with and without an explicit factor, on both sides of the switch point.

  rope_scaling_reference.py OUT
writes OUT/cases.json (each case: its config.json and the lengths asked) and OUT/rope.safetensors
("<case>.<length>.inv_freq" [D/2] fp32, "<case>.<length>.attention_factor" [1] fp64).
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, Phi3Config, PhiConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

BASE = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=1, vocab_size=64,
            intermediate_size=32, max_position_embeddings=128)

CASES = {
    "yarn_mscale": ("llama", dict(rope_parameters=dict(rope_type="yarn", rope_theta=50000.0, factor=8.0,
                                                       original_max_position_embeddings=32, mscale=0.707,
                                                       mscale_all_dim=1.0, beta_fast=16, beta_slow=2))),
    "yarn_attention_factor": ("llama", dict(rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                                                 original_max_position_embeddings=16,
                                                                 attention_factor=0.8, truncate=False))),
    "yarn_partial": ("phi", dict(partial_rotary_factor=0.5, rope_parameters=dict(
        rope_type="yarn", rope_theta=10000.0, factor=2.0, original_max_position_embeddings=64,
        partial_rotary_factor=0.5))),
    "dynamic": ("llama", dict(rope_parameters=dict(rope_type="dynamic", rope_theta=10000.0, factor=3.0))),
    "longrope": ("phi3", dict(original_max_position_embeddings=32, rope_parameters=dict(
        rope_type="longrope", rope_theta=10000.0, short_factor=[1.0 + i / 8 for i in range(16)],
        long_factor=[2.0 + i for i in range(16)]))),
    "longrope_factor": ("phi3", dict(original_max_position_embeddings=32, rope_parameters=dict(
        rope_type="longrope", rope_theta=500000.0, factor=6.0, short_factor=[1.0] * 16,
        long_factor=[1.0 + i * i / 4 for i in range(16)]))),
}
LENGTHS = [0, 16, 32, 33, 128, 200]


def main(out):
    tensors, cases = {}, {}
    for name, (kind, fields) in CASES.items():
        cls = {"llama": LlamaConfig, "phi3": Phi3Config, "phi": PhiConfig}[kind]
        config = cls(**BASE, **fields)
        rope_type = config.rope_parameters["rope_type"]
        saved = json.loads(config.to_json_string())
        cases[name] = {"config": saved, "lengths": LENGTHS}
        for length in LENGTHS:
            inv_freq, factor = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu", seq_len=length or None)
            tensors[f"{name}.{length}.inv_freq"] = inv_freq.float().contiguous()
            tensors[f"{name}.{length}.attention_factor"] = torch.tensor([float(factor)], dtype=torch.float64)
    save_file(tensors, f"{out}/rope.safetensors")
    with open(f"{out}/cases.json", "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
