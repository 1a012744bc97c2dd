"""transformers' logits for hf-zoo MoE fixtures with some config fields changed (routing options
the fixtures themselves do not exercise). Usage: OUT_DIR VARIANTS, VARIANTS a JSON object
{name: [fixture_dir, {field: value}, fresh]}. For each writes OUT_DIR/name/config.json (the
fixture's, overridden) and OUT_DIR/name/logits.safetensors: "logits" F32 [2, 16, V] of the
fixture's reference input_ids. The weights are the fixture's (linked), or with fresh true (a
layout the fixture's weights do not fit, such as dense layers) drawn by transformers from seed 0
and saved there. One process for all: importing transformers is the slow part."""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM

out_root, variants = sys.argv[1], json.loads(sys.argv[2])
for name, (fixture, overrides, *fresh) in variants.items():
    fresh = bool(fresh and fresh[0])
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(fixture, "config.json")) as f:
        config = json.load(f)
    config.update(overrides)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    if fresh:
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(out)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager").eval()
        model.save_pretrained(out)
    else:
        weights = os.path.join(out, "model.safetensors")
        if not os.path.exists(weights):
            os.symlink(os.path.abspath(os.path.join(fixture, "model.safetensors")), weights)
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    input_ids = load_file(os.path.join(fixture, "reference.safetensors"))["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits.float().contiguous()
    save_file({"logits": logits}, os.path.join(out, "logits.safetensors"))
