"""The oracle of tests/peft: Hugging Face transformers and PEFT themselves.

  peft_reference.py make-adapter MODEL OUT TARGETS [--modules-to-save M,...] [--rslora 1] [--r R] [--alpha A]
                                 [--ids IDS]
      a PEFT LoRA adapter on MODEL with random A and non-zero B (init_lora_weights=False), saved
      with save_pretrained into OUT; with --ids, also the PEFT model's logits of IDS (comma-separated)
      in OUT/reference_logits.safetensors ("logits" [T, V])
  peft_reference.py logits OUT IDS MODEL ADAPTER|- [MODEL ADAPTER|- ...]
      logits [T, V] of IDS from each MODEL, with PeftModel.from_pretrained(ADAPTER) on it unless
      ADAPTER is "-", written to OUT (safetensors: "logits0", "logits1", ...); one process for all,
      since importing transformers and PEFT takes most of the time
"""
import sys
import warnings

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

warnings.filterwarnings("ignore")


def make_adapter(args):
    from peft import LoraConfig, get_peft_model

    model_dir, out, targets = args[0], args[1], args[2]
    opts = dict(zip(args[3::2], args[4::2]))
    torch.manual_seed(int(opts.get("--seed", "0")))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=int(opts.get("--r", "4")),
        lora_alpha=float(opts.get("--alpha", "8")),
        target_modules=targets if targets in ("all-linear",) or "*" in targets or "(" in targets else targets.split(","),
        use_rslora=opts.get("--rslora", "0") == "1",
        modules_to_save=opts["--modules-to-save"].split(",") if "--modules-to-save" in opts else None,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    if "--ids" in opts:
        peft_model.eval()
        save_file({"logits": forward(peft_model, opts["--ids"])}, out + "/reference_logits.safetensors")


def forward(model, ids):
    input_ids = torch.tensor([[int(i) for i in ids.split(",")]])
    with torch.no_grad():
        return model(input_ids=input_ids).logits[0].contiguous()


def logits(args):
    out, ids, pairs = args[0], args[1], args[2:]
    results = {}
    for i in range(0, len(pairs), 2):
        model = AutoModelForCausalLM.from_pretrained(pairs[i], dtype=torch.float32)
        if pairs[i + 1] != "-":
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, pairs[i + 1])
        model.eval()
        results[f"logits{i // 2}"] = forward(model, ids)
    save_file(results, out)


if __name__ == "__main__":
    {"make-adapter": make_adapter, "logits": logits}[sys.argv[1]](sys.argv[2:])
