"""transformers' num_parameters() of every preset in configs/models: each config.json built as HF's
model on the meta device (no memory, no weights, so DeepSeek-V3's 671B costs nothing). Writes
OUT/counts.json, {preset name: count}."""
import glob
import json
import os
import sys

import torch
import transformers

out = sys.argv[1]
presets = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs", "models")
counts = {}
for path in sorted(glob.glob(os.path.join(presets, "*.json"))):
    with open(path) as f:
        config = transformers.AutoConfig.for_model(**json.load(f))
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    counts[os.path.basename(path)[: -len(".json")]] = model.num_parameters()
with open(os.path.join(out, "counts.json"), "w") as f:
    json.dump(counts, f, indent=1)
