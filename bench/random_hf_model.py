#!/usr/bin/env python3
"""Writes a randomly initialised Hugging Face model folder (config.json + model.safetensors) for a
llama-family config (llama, mistral, qwen2), to measure loading and conversion of real-sized models
when no pretrained weights can be downloaded. Needs only torch (the project's .venv; no transformers,
no safetensors package): the safetensors file is written by hand, tensor by tensor, so that a
model larger than memory can still be written.

Usage: bench/random_hf_model.py CONFIG.json OUT_DIR [--dtype bf16|f16|f32] [--seed N]
Example: bench/random_hf_model.py configs/models/qwen2.5-0.5b.json /tmp/qwen-0.5b --dtype bf16
"""
import argparse
import json
import os
import struct

import torch

DTYPES = {"bf16": (torch.bfloat16, "BF16", "bfloat16"), "f16": (torch.float16, "F16", "float16"),
          "f32": (torch.float32, "F32", "float32")}


def tensor_shapes(c):
    """HF names and shapes of a llama-family checkpoint, in module order."""
    hidden, inter, vocab = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    heads = c["num_attention_heads"]
    kv_heads = c.get("num_key_value_heads", heads)
    head_dim = c.get("head_dim", hidden // heads)
    qkv_bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
    shapes = [("model.embed_tokens.weight", [vocab, hidden])]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", [hidden]),
                   (p + "self_attn.q_proj.weight", [heads * head_dim, hidden]),
                   (p + "self_attn.k_proj.weight", [kv_heads * head_dim, hidden]),
                   (p + "self_attn.v_proj.weight", [kv_heads * head_dim, hidden])]
        if qkv_bias:
            shapes += [(p + "self_attn.q_proj.bias", [heads * head_dim]),
                       (p + "self_attn.k_proj.bias", [kv_heads * head_dim]),
                       (p + "self_attn.v_proj.bias", [kv_heads * head_dim])]
        shapes += [(p + "self_attn.o_proj.weight", [hidden, heads * head_dim]),
                   (p + "post_attention_layernorm.weight", [hidden]),
                   (p + "mlp.gate_proj.weight", [inter, hidden]),
                   (p + "mlp.up_proj.weight", [inter, hidden]),
                   (p + "mlp.down_proj.weight", [hidden, inter])]
    shapes.append(("model.norm.weight", [hidden]))
    if not c.get("tie_word_embeddings", False):
        shapes.append(("lm_head.weight", [vocab, hidden]))
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    if config.get("model_type") not in ("llama", "mistral", "qwen2"):
        raise SystemExit(f"{args.config}: model_type {config.get('model_type')!r} is not llama, mistral or qwen2")
    torch_dtype, st_dtype, name = DTYPES[args.dtype]
    config["torch_dtype"] = name
    shapes = tensor_shapes(config)
    element = torch.tensor([], dtype=torch_dtype).element_size()
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for tensor_name, shape in shapes:
        n = element
        for d in shape:
            n *= d
        header[tensor_name] = {"dtype": st_dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - (8 + len(text)) % 8) % 8)
    os.makedirs(args.out, exist_ok=True)
    generator = torch.Generator().manual_seed(args.seed)
    std = config.get("initializer_range", 0.02)
    with open(os.path.join(args.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for tensor_name, shape in shapes:
            if tensor_name.endswith("norm.weight"):
                t = torch.ones(shape)
            elif tensor_name.endswith(".bias"):
                t = torch.zeros(shape)
            else:
                t = torch.empty(shape).normal_(0.0, std, generator=generator)
            f.write(t.to(torch_dtype).contiguous().view(torch.uint8).numpy().tobytes())
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}: {len(shapes)} tensors, {offset} bytes of {name}")


if __name__ == "__main__":
    main()
