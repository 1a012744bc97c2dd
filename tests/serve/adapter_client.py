"""`forma serve --adapter` through the official openai client: a LoRA adapter made by PEFT (random A
and non-zero B) changes what the server answers, greedy completions equal `forma generate
--adapter`, and echo logprobs equal the log-softmax of PEFT's model (transformers + the adapter).
Usage: adapter_client.py FORMA MODEL_DIR SCRATCH"""
import os
import subprocess
import sys

import openai
import torch

from serve_util import Server, expect, forma_json, report

FORMA, MODEL, SCRATCH = sys.argv[1:4]
PROMPT = "The cat sat"
HERE = os.path.dirname(os.path.abspath(__file__))


def make_adapter():
    """PEFT's own adapter on every linear layer, written by save_pretrained."""
    out = os.path.join(SCRATCH, "adapter")
    subprocess.run([sys.executable, os.path.join(HERE, "..", "peft", "peft_reference.py"), "make-adapter", MODEL, out,
                    "all-linear", "--r", "4", "--alpha", "16", "--seed", "3"], check=True)
    return out


def peft_log_softmax(adapter, ids):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32), adapter)
    model.eval()
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)


def main():
    adapter = make_adapter()
    generate = ["generate", "--model", MODEL, "--prompt", PROMPT, "--max-new-tokens", "12", "--json", "--device", "cpu"]
    base = forma_json(FORMA, *generate)
    ref = forma_json(FORMA, *generate, "--adapter", adapter)
    print(f"forma generate: {base['text']!r}; with the adapter: {ref['text']!r}", flush=True)
    expect(ref["output_ids"] != base["output_ids"], "the adapter changes forma generate's greedy output")

    server = Server(FORMA, MODEL, SCRATCH, "--adapter", adapter)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        r = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0)
        expect(r.choices[0].text == ref["text"], f"served {r.choices[0].text!r} != forma generate --adapter {ref['text']!r}")

        ids = ref["prompt_ids"] + ref["output_ids"][:5]
        e = client.completions.create(model="tiny", prompt=ids, max_tokens=1, temperature=0, echo=True, logprobs=1)
        got = e.choices[0].logprobs.token_logprobs
        want = peft_log_softmax(adapter, ids)
        worst = max(abs(got[t] - want[t - 1, ids[t]].item()) for t in range(1, len(ids)))
        print(f"echo logprobs against PEFT's model: largest difference {worst:.2e}", flush=True)
        expect(worst < 1e-4, f"echo logprobs differ from PEFT's by {worst}")
        expect(abs(got[-1] - want[-1].max().item()) < 1e-4, "the generated token is PEFT's greedy one")
    finally:
        expect(server.stop() == 0, "exit status after SIGTERM")
    return report(server)


if __name__ == "__main__":
    sys.exit(main())
