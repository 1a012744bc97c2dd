#!/usr/bin/env python3
"""Self-check for tests/fixtures/hf-zoo (written by make_hf_fixtures.py).

For every fixture, in a fresh model built by `AutoModelForCausalLM.from_pretrained(dir)`:
  * MANIFEST.json sha256 of every file matches;
  * logits, every hidden state, loss, the stored gradients, the global grad norm, rope inv_freq,
    the greedy sequence and the per-step generation logits reproduce with max abs diff 0;
  * the feature switch named in FEATURE_OFF (when the fixture has one) changes the logits, so the
    fixture really depends on that feature (a loader that ignores it would fail against it).
Exit status 1 on any mismatch.  Usage: .venv/bin/python scripts/check_hf_fixtures.py [--only a,b]
"""
import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

# Config overrides that switch a fixture's distinguishing feature off: the logits must change.
FEATURE_OFF = {
    "mistral": {"sliding_window": None},
    "starcoder2": {"sliding_window": None},
    "phi3_longrope": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}},
    "qwen2_sliding": {"use_sliding_window": False, "layer_types": ["full_attention"] * 3},
    "gemma2": {"attn_logit_softcapping": None, "final_logit_softcapping": None},
    "gemma3": {"layer_types": ["full_attention"] * 3},
    "olmo": {"clip_qkv": None},
    "cohere": {"logit_scale": 1.0},
    "granite": {"embedding_multiplier": 1.0, "residual_multiplier": 1.0, "logits_scaling": 1.0},
    "phi": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                 "partial_rotary_factor": 1.0}},
    "gpt_neox": {"use_parallel_residual": False},
    "stablelm": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                 "partial_rotary_factor": 1.0}},
    "nemotron": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                 "partial_rotary_factor": 1.0}},
    "qwen2_moe": {"num_experts_per_tok": 1},
    "qwen3_moe": {"norm_topk_prob": False},
    "mixtral": {"num_experts_per_tok": 1},
    "olmoe": {"norm_topk_prob": True},
    "deepseek_v2": {"topk_method": "greedy"},
    "deepseek_v3": {"topk_group": 4},
    "llama_rope_linear": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}},
    "llama_rope_dynamic": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}},
    "llama_rope_yarn": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}},
    "llama_rope_llama3": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}},
}


def maxdiff(a, b):
    if a.shape != b.shape:
        return float("inf")
    if not a.is_floating_point():
        return 0.0 if torch.equal(a, b) else float("inf")
    return float((a.float() - b.float()).abs().max()) if a.numel() else 0.0


def load(d, overrides=None):
    cfg = AutoConfig.from_pretrained(d)
    for k, v in (overrides or {}).items():
        setattr(cfg, k, v)
    m = AutoModelForCausalLM.from_pretrained(d, config=cfg, attn_implementation="eager",
                                             dtype=torch.float32)
    m.eval()
    # from_pretrained leaves the weights in the safetensors mapping, 8 bytes past a 64-byte
    # boundary here; oneDNN/MKL then take another kernel for the batch-1 decode matmuls and the
    # generation logits move by ~1e-6. Copies are aligned like the generator's freshly built model.
    with torch.no_grad():
        for p in m.parameters():
            p.data = p.data.clone()
        for mod in m.modules():
            for k, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[k] = b.clone()
    for c in (m.config, m.generation_config):
        for k in ("eos_token_id", "pad_token_id", "bos_token_id"):
            if hasattr(c, k):
                setattr(c, k, None)
    return m


def check(d, ref_json):
    name = os.path.basename(d)
    ref = load_file(os.path.join(d, "reference.safetensors"))
    m = load(d)
    ids = ref["input_ids"]
    ones = torch.ones_like(ids)
    diffs = {}
    inv0 = {n: b.detach().clone() for n, b in m.named_buffers() if n.endswith("inv_freq")}
    with torch.no_grad():
        out = m(ids, attention_mask=ones, output_hidden_states=True, use_cache=False)
    diffs["logits"] = maxdiff(out.logits, ref["logits"])
    n_hidden = sum(1 for k in ref if k.startswith("hidden_states."))
    if n_hidden != len(out.hidden_states):
        diffs["hidden_states count"] = float("inf")
    for i, h in enumerate(out.hidden_states):
        diffs[f"hidden_states.{i}"] = maxdiff(h, ref[f"hidden_states.{i}"])
    rope = ref_json.get("rope") or {}
    bufs = dict(m.named_buffers())
    for t, n in rope.get("inv_freq_tensors", {}).items():
        diffs[t] = maxdiff(bufs[n], ref[t])
    for t, n in rope.get("initial_inv_freq_tensors", {}).items():
        diffs[t] = maxdiff(inv0[n.split(" ")[0]], ref[t])
    # Loss and gradients.
    o = m(ids, attention_mask=ones, labels=ids, use_cache=False)
    o.loss.backward()
    diffs["loss"] = maxdiff(o.loss.detach().reshape(1), ref["loss"])
    params = dict(m.named_parameters())
    for k in ref:
        if k.startswith("grad."):
            diffs[k] = maxdiff(params[k[5:]].grad, ref[k])
    sq, seen = 0.0, set()
    for p in m.parameters():
        if id(p) in seen or p.grad is None:
            continue
        seen.add(id(p))
        sq += float((p.grad.double() ** 2).sum())
    diffs["grad_norm"] = abs(sq ** 0.5 - ref_json["training"]["grad_norm"])
    m.zero_grad(set_to_none=True)
    # Greedy generation on a fresh model. The generator ran the batched forward first on the
    # same model (dynamic/longrope RoPE keep state from it), so replay that order.
    m = load(d)
    with torch.no_grad():
        m(ids, attention_mask=ones, use_cache=False)
    g = m.generate(ids[:1], attention_mask=ones[:1], max_new_tokens=8, do_sample=False, num_beams=1,
                   use_cache=True, eos_token_id=None, pad_token_id=None, temperature=None,
                   top_p=None, top_k=None, return_dict_in_generate=True, output_logits=True)
    diffs["generation.sequence"] = maxdiff(g.sequences, ref["generation.sequence"])
    diffs["generation.step_logits"] = maxdiff(torch.cat(g.logits, 0), ref["generation.step_logits"])
    bad = {k: v for k, v in diffs.items() if v != 0.0}
    # Feature sensitivity.
    feature = None
    if name in FEATURE_OFF:
        off = load(d, FEATURE_OFF[name])
        with torch.no_grad():
            lo = off(ids, attention_mask=ones, use_cache=False).logits
        feature = maxdiff(lo, ref["logits"])
        if not feature > 1e-4:
            bad[f"feature off {FEATURE_OFF[name]} changes logits by only"] = feature
    return bad, feature


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--dir", default=os.path.join(here, "..", "tests", "fixtures", "hf-zoo"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    root = os.path.abspath(args.dir)
    with open(os.path.join(root, "MANIFEST.json")) as f:
        manifest = json.load(f)["files"]
    failed = 0
    for rel, sha in manifest.items():
        with open(os.path.join(root, rel), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != sha:
                print(f"MANIFEST mismatch: {rel}")
                failed += 1
    only = set(filter(None, args.only.split(",")))
    names = sorted({rel.split("/")[0] for rel in manifest})
    names = [n for n in names if not only or n in only]
    for name in names:
        d = os.path.join(root, name)
        with open(os.path.join(d, "reference.json")) as f:
            ref_json = json.load(f)
        bad, feature = check(d, ref_json)
        ftxt = "" if feature is None else f"  feature-off logits diff {feature:.3g}"
        print(f"{'FAIL' if bad else 'ok  '} {name:22s}{ftxt}" + (f"  {bad}" if bad else ""))
        failed += bool(bad)
    print(f"{len(names)} fixtures checked, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
