"""HF transformers' Gemma in bfloat16, as the oracle for tests/model/gemma_test.cpp.

usage: gemma_bf16_reference.py FIXTURE_DIR OUT.safetensors

Loads FIXTURE_DIR (an hf-zoo fixture: gemma, also gemma2, gemma3, olmo2) in bfloat16, eager attention,
runs reference.safetensors' input_ids and writes every hidden state and the logits (as float32,
which holds bf16 values exactly) to OUT.
"""
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

torch.manual_seed(0)
torch.set_num_threads(1)
fixture, out = sys.argv[1], sys.argv[2]
model = AutoModelForCausalLM.from_pretrained(fixture, dtype=torch.bfloat16, attn_implementation="eager")
model.eval()
ids = load_file(f"{fixture}/reference.safetensors")["input_ids"]
with torch.no_grad():
    result = model(input_ids=ids, output_hidden_states=True)
tensors = {f"hidden_states.{i}": h.float().contiguous() for i, h in enumerate(result.hidden_states)}
tensors["logits"] = result.logits.float().contiguous()
if hasattr(model.model.embed_tokens, "embed_scale"):  # Gemma 1 and 3 (Gemma 2 scales inline)
    tensors["embed_scale"] = model.model.embed_tokens.embed_scale.to(torch.bfloat16).float().reshape(1)
save_file(tensors, out)
