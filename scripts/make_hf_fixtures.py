#!/usr/bin/env python3
"""Write tests/fixtures/hf-zoo: tiny random HF causal LMs with reference outputs.

Every fixture is built by the installed, unmodified `transformers` (CPU, float32, eager attention,
1 thread) from a tiny config that still exercises the architecture's distinguishing features. For
each one we write (same layout as tests/fixtures/hf-tiny, see tests/fixtures/hf-zoo/README.md):
  config.json, model.safetensors  (HF save_pretrained output)
  reference.safetensors           (input_ids, logits, hidden_states.N, loss, grad.*,
                                   generation.sequence, generation.step_logits, rope.inv_freq)
  reference.json                  (versions, recipe, stats, greedy tokens and margins)
Re-running gives byte-identical files (checked by comparing MANIFEST.json before/after).

Usage: .venv/bin/python scripts/make_hf_fixtures.py [--out DIR] [--only name,name]
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import safetensors  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

from hf_zoo_specs import SPECS, VOCAB  # noqa: E402

SEQ = 16
BATCH = 2
NEW_TOKENS = 8
MIN_MARGIN = 1e-3  # reseed below this, so greedy-token comparisons are robust
PERTURB = 0.1


def build(spec, seed):
    """Builds the HF model for a spec with torch.manual_seed(seed), then perturbs 1-D tensors."""
    kw = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)  # inside the tiny vocab
    kw.update(spec["config"])
    cfg = AutoConfig.for_model(spec["model_type"], **kw)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    # Norm weights are 1 and biases 0 after HF init: perturb them so a loader that ignores one
    # (or swaps weight/bias, or misses Gemma's 1+w) gives visibly different outputs.
    gen = torch.Generator().manual_seed(seed + 1)
    perturbed = []
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.ndim == 1:
                p.add_(PERTURB * torch.randn(p.shape, generator=gen))
                perturbed.append(name)
        # DeepSeek-V3's router correction bias is a persistent buffer (zeros after init).
        for name, b in sorted(model.named_buffers(), key=lambda kv: kv[0]):
            if name.endswith("e_score_correction_bias"):
                b.add_(PERTURB * torch.randn(b.shape, generator=gen))
                perturbed.append(name)
    return cfg, model, perturbed


def clear_special_tokens(model):
    # No EOS stopping: exactly NEW_TOKENS are generated.
    for c in (model.config, model.generation_config):
        for k in ("eos_token_id", "pad_token_id", "bos_token_id"):
            if hasattr(c, k):
                setattr(c, k, None)


def margins(logits_rows):
    top = torch.topk(logits_rows, 2, dim=-1).values
    return (top[:, 0] - top[:, 1]).tolist()


def greedy(model, ids):
    """HF generate with the cache, and an independent no-cache argmax loop over full forwards."""
    clear_special_tokens(model)
    ones = torch.ones_like(ids)
    out = model.generate(ids, attention_mask=ones, max_new_tokens=NEW_TOKENS, do_sample=False,
                         num_beams=1, use_cache=True, eos_token_id=None, pad_token_id=None,
                         return_dict_in_generate=True, output_logits=True,
                         temperature=None, top_p=None, top_k=None)
    step_logits = torch.cat([l.float() for l in out.logits], 0)
    seq = out.sequences
    cache = getattr(out, "past_key_values", None)
    # No-cache loop: every step recomputes the whole sequence.
    cur = ids.clone()
    nc_rows = []
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            lg = model(cur, attention_mask=torch.ones_like(cur), use_cache=False).logits[:, -1]
            nc_rows.append(lg)
            cur = torch.cat([cur, lg.argmax(-1, keepdim=True)], 1)
    nc_logits = torch.cat(nc_rows, 0)
    return {
        "sequence": seq,
        "step_logits": step_logits,
        "cache_type": type(cache).__name__ if cache is not None else None,
        "nocache_sequence": cur,
        "nocache_logits": nc_logits,
    }


def rope_inv_freq(model):
    """Copies of the rotary inv_freq buffers (not the original_/long_ helper copies)."""
    return [(n, b.detach().clone()) for n, b in model.named_buffers()
            if n.endswith("inv_freq") and "original_inv_freq" not in n and "long_inv_freq" not in n]


def pick_grads(model, spec):
    """An embedding, one attention projection, one norm and lm_head if untied."""
    names = [n for n, _ in model.named_parameters()]
    emb = model.get_input_embeddings().weight
    emb_name = next(n for n, p in model.named_parameters() if p is emb)
    picks = [emb_name]
    attn = spec.get("grad_attn") or next(
        n for n in names if ".0." in n and n.endswith("weight") and
        any(k in n for k in ("q_proj", "qkv", "c_attn", "query_key_value", "q_a_proj", "Wqkv")))
    picks.append(attn)
    # The final norm: outside the layer stack, preferring ln_f / final_* over e.g. bloom's
    # word_embeddings_layernorm.
    top = [n for n in names if ".layers." not in n and ".h." not in n and n.endswith("weight") and
           any(k in n for k in ("norm", "ln_f", "final_layer"))]
    top.sort(key=lambda n: (not ("ln_f" in n or "final" in n or n.endswith(".norm.weight")), n))
    norm = spec.get("grad_norm") or (top[0] if top else None)
    if norm is None:  # OLMo's final LayerNorm has no parameters: take any 1-D weight
        norm = next((n for n in names if "norm" in n and n.endswith("weight")), None)
    if norm is not None:
        picks.append(norm)
    out_emb = model.get_output_embeddings()
    if out_emb is not None and out_emb.weight is not emb:
        picks.append(next(n for n, p in model.named_parameters() if p is out_emb.weight))
    for n in picks:
        assert n in names, (spec["name"], n)
    return picks


def make_one(spec, out_root):
    name = spec["name"]
    seed = spec.get("seed", 0)
    tries = []
    while True:
        cfg, model, perturbed = build(spec, seed)
        ids = torch.randint(3, VOCAB - 1, (BATCH, SEQ), generator=torch.Generator().manual_seed(1234))
        g = greedy(model, ids[:1])
        m_cache = margins(g["step_logits"])
        m_nocache = margins(g["nocache_logits"])
        min_margin = min(m_cache + m_nocache)
        tries.append({"seed": seed, "min_margin": min_margin})
        if min_margin >= MIN_MARGIN or len(tries) >= 20:
            break
        seed += 1
    ones = torch.ones_like(ids)
    # Rebuild (identical weights: same seed) so the reference forward runs on a model that no
    # generate call has touched: dynamic and longrope RoPE rewrite inv_freq from the length.
    cfg, model, perturbed = build(spec, seed)
    # Saved now, before generation clears the special token ids on the config.
    d = os.path.join(out_root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model.save_pretrained(d, safe_serialization=True)
    gc_path = os.path.join(d, "generation_config.json")
    if os.path.exists(gc_path):
        os.remove(gc_path)  # not needed; hf-tiny has none either

    # Forward first; generation (recorded below) comes after.
    inv = rope_inv_freq(model)
    with torch.no_grad():
        fwd = model(ids, attention_mask=ones, output_hidden_states=True, use_cache=False)
    inv_after_fwd = rope_inv_freq(model)
    logits = fwd.logits.float()
    hidden = [h.float() for h in fwd.hidden_states]
    with torch.no_grad():
        # 0 where logits = lm_head(last hidden state); cohere/granite/gemma2 scale or soft-cap after.
        head_diff = float((model.get_output_embeddings()(fwd.hidden_states[-1]) - fwd.logits).abs().max())

    # Loss and gradients (eval mode: dropout is 0 in every config anyway).
    model.zero_grad(set_to_none=True)
    out = model(ids, attention_mask=ones, labels=ids, use_cache=False)
    loss = out.loss
    loss.backward()
    sq = 0.0
    no_grad = []
    seen = set()
    for n, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if p.grad is None:
            no_grad.append(n)
            continue
        sq += float((p.grad.double() ** 2).sum())
    grad_norm = sq ** 0.5
    grads = pick_grads(model, spec)
    params = dict(model.named_parameters())
    # Independent loss recomputation from the stored logits, in fp64.
    shift = logits[:, :-1].double().reshape(-1, logits.shape[-1])
    lbl = ids[:, 1:].reshape(-1)
    loss_fp64 = float(torch.nn.functional.cross_entropy(shift, lbl))

    g = greedy(model, ids[:1])
    m_cache = margins(g["step_logits"])
    # Prefill row of the cached generation vs the batched forward of the same prompt.
    prefill_diff = float((g["step_logits"][0] - logits[0, -1]).abs().max())

    grad_tensors = {f"grad.{n}": params[n].grad.detach().float().clone().contiguous() for n in grads}
    model.zero_grad(set_to_none=True)
    tensors = {"input_ids": ids.contiguous(), "logits": logits.contiguous(),
               "loss": loss.detach().reshape(1).float().contiguous(),
               "generation.sequence": g["sequence"].contiguous(),
               "generation.step_logits": g["step_logits"].contiguous()}
    for i, h in enumerate(hidden):
        tensors[f"hidden_states.{i}"] = h.contiguous()
    tensors.update(grad_tensors)
    rope = None
    if inv:
        # The buffers as they were during the reference forward (dynamic / longrope rewrite them
        # in place from the sequence length), and as built (before any forward).
        rope = {"inv_freq_tensors": {}, "initial_inv_freq_tensors": {}}
        for (n, b0), (_, b1) in zip(inv, inv_after_fwd):
            leaf = n.rsplit(".", 1)[1]
            layer_type = leaf[: -len("inv_freq")].rstrip("_")  # gemma3: full_attention / sliding_attention
            t = "rope.inv_freq" if not layer_type else f"rope.{layer_type}.inv_freq"
            tensors[t] = b1.float().contiguous()
            rope["inv_freq_tensors"][t] = n
            if not torch.equal(b0, b1):
                tensors[t + ".initial"] = b0.float().contiguous()
                rope["initial_inv_freq_tensors"][t + ".initial"] = n + " before the first forward"
        rotary = [m for m in model.modules() if hasattr(m, "rope_type")]
        if rotary:
            r = rotary[0]
            rope["rope_type"] = r.rope_type
            scal = {k[: -len("attention_scaling")].rstrip("_") or "all": float(v)
                    for k, v in vars(r).items() if k.endswith("attention_scaling")}
            rope["attention_scaling"] = scal
    save_file(tensors, os.path.join(d, "reference.safetensors"), metadata={"format": "pt"})

    attn_classes = sorted({type(m).__name__ for m in model.modules()
                           if type(m).__name__.endswith("Attention")})
    nparams = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    out_emb = model.get_output_embeddings()
    tied = out_emb is not None and out_emb.weight is model.get_input_embeddings().weight
    ref = {
        "name": name,
        "model_type": cfg.model_type,
        "config_class": type(cfg).__name__,
        "model_class": type(model).__name__,
        "features": spec["features"],
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "safetensors_version": safetensors.__version__,
        "python_version": platform.python_version(),
        "attn_implementation": "eager",
        "attention_classes": attn_classes,
        "dtype": "float32",
        "num_parameters": nparams,
        "tie_word_embeddings": tied,
        "init": {
            "model_seed": f"torch.manual_seed({seed}) immediately before "
                          f"AutoModelForCausalLM.from_config(config) (HF _init_weights)",
            "seed_tries": tries,
            "perturbation": f"then every 1-D parameter += {PERTURB} * randn from "
                            f"torch.Generator().manual_seed({seed + 1}), visiting named_parameters() "
                            "sorted by name (then e_score_correction_bias buffers, if any)",
            "perturbed": perturbed,
        },
        "router": spec.get("router"),
        "inputs": {
            "input_ids": ids.tolist(),
            "how": f"torch.randint(3, {VOCAB - 1}, ({BATCH}, {SEQ}), "
                   "generator=torch.Generator().manual_seed(1234))",
            "attention_mask": "all ones, passed explicitly",
            "position_ids": "default (0..seq_len-1)",
        },
        "forward": {
            "call": "model(input_ids, attention_mask=ones, output_hidden_states=True, "
                    "use_cache=False) in eval mode, torch.no_grad(), before any generate call",
            "logits": {"tensor": "logits", "shape": list(logits.shape)},
            "hidden_states": [f"hidden_states.{i}" for i in range(len(hidden))],
            "hidden_states_meaning": "HF output_hidden_states: [0] embedding output fed to layer 0 "
                                     "(after any scaling / position embeddings), [i] output of layer "
                                     "i-1, the LAST entry is after the final norm",
            "lm_head(hidden_states[-1]) vs logits max abs diff": head_diff,
            "logits_sum": float(logits.double().sum()),
            "logits_abs_max": float(logits.abs().max()),
            "logits_std": float(logits.std()),
        },
        "training": {
            "call": "model(input_ids, attention_mask=ones, labels=input_ids, use_cache=False)"
                    ".loss.backward() in eval mode",
            "loss": float(loss.detach()),
            "loss_recomputed_from_stored_logits_fp64": loss_fp64,
            "grad_norm": grad_norm,
            "grad_norm_definition": "sqrt(sum over distinct parameters of sum(grad^2)) in float64; "
                                    "a tied parameter counts once",
            "stored_grads": [f"grad.{n}" for n in grads],
            "parameters_without_grad": no_grad,
        },
        "generation": {
            "prompt": "input_ids[0] (batch of 1)",
            "call": "model.generate(input_ids[:1], attention_mask=ones, max_new_tokens=8, "
                    "do_sample=False, num_beams=1, use_cache=True, eos/pad None, output_logits=True)",
            "kv_cache_type": g["cache_type"],
            "new_tokens": g["sequence"][0, SEQ:].tolist(),
            "sequence": g["sequence"][0].tolist(),
            "step_logits": {"tensor": "generation.step_logits",
                            "shape": list(g["step_logits"].shape)},
            "top1_top2_margins": m_cache,
            "min_top1_top2_margin": min(m_cache),
            "min_margin_incl_nocache_loop": min_margin,
            "matches_greedy_without_cache": bool(torch.equal(g["sequence"], g["nocache_sequence"])),
            "step_logits_max_abs_diff_vs_nocache_loop":
                float((g["step_logits"] - g["nocache_logits"]).abs().max()),
            "prefill_last_logits_max_abs_diff_vs_batched_forward": prefill_diff,
        },
        "rope": rope,
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=False)
        f.write("\n")
    return ref


TABLE_BEGIN = "<!-- fixture table: written by scripts/make_hf_fixtures.py -->"
TABLE_END = "<!-- end of fixture table -->"


def write_readme_table(out_root, failures):
    """Replaces the table between the markers in README.md (the prose around it is hand-written)."""
    path = os.path.join(out_root, "README.md")
    if not os.path.exists(path):
        return
    rows = ["| dir | model_type | HF class | tied | features exercised | min greedy margin | bytes |",
            "|---|---|---|---|---|---|---|"]
    total = 0
    for name in sorted(n for n in os.listdir(out_root) if os.path.isdir(os.path.join(out_root, n))):
        d = os.path.join(out_root, name)
        with open(os.path.join(d, "reference.json")) as f:
            r = json.load(f)
        size = sum(os.path.getsize(os.path.join(d, fn)) for fn in os.listdir(d))
        total += size
        rows.append(f"| {name} | {r['model_type']} | {r['model_class']} | "
                    f"{'yes' if r['tie_word_embeddings'] else 'no'} | {r['features']} | "
                    f"{r['generation']['min_margin_incl_nocache_loop']:.4f} | {size} |")
    rows.append(f"| **total** | | | | {len(rows) - 2} fixtures | | {total} |")
    if failures:
        rows.append("")
        rows.append("Failed to build (from failures.json):")
        rows += [f"* `{k}`: {v}" for k, v in sorted(failures.items())]
    with open(path) as f:
        text = f.read()
    a, b = text.index(TABLE_BEGIN) + len(TABLE_BEGIN), text.index(TABLE_END)
    with open(path, "w") as f:
        f.write(text[:a] + "\n" + "\n".join(rows) + "\n" + text[b:])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "hf-zoo"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_root = os.path.abspath(args.out)
    os.makedirs(out_root, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    failures = {}
    summary = []
    t0 = time.time()
    for spec in SPECS:
        if only and spec["name"] not in only:
            continue
        t = time.time()
        try:
            ref = make_one(spec, out_root)
        except Exception as e:  # recorded in failures.json and the README, never silent
            failures[spec["name"]] = f"{type(e).__name__}: {e}"
            print(f"FAIL {spec['name']}: {failures[spec['name']]}", flush=True)
            continue
        g = ref["generation"]
        print(f"{spec['name']:22s} {ref['model_class']:28s} margin {g['min_margin_incl_nocache_loop']:.4f}"
              f" nocache {g['matches_greedy_without_cache']} loss {ref['training']['loss']:.4f}"
              f" ({time.time() - t:.1f}s)", flush=True)
        summary.append(spec["name"])
    if not only:
        manifest = {}
        for root, _, files in sorted(os.walk(out_root)):
            for fn in sorted(files):
                p = os.path.join(root, fn)
                rel = os.path.relpath(p, out_root)
                if rel in ("MANIFEST.json", "README.md", "failures.json"):
                    continue
                manifest[rel] = sha256(p)
        with open(os.path.join(out_root, "MANIFEST.json"), "w") as f:
            json.dump({"transformers_version": transformers.__version__,
                       "torch_version": torch.__version__,
                       "files": dict(sorted(manifest.items()))}, f, indent=1)
            f.write("\n")
        write_readme_table(out_root, failures)
        with open(os.path.join(out_root, "failures.json"), "w") as f:
            json.dump(failures, f, indent=1, sort_keys=True)
            f.write("\n")
    print(f"{len(summary)} fixtures, {len(failures)} failures, {time.time() - t0:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
