"""Reference assistant-token masks for tests/data/sft_render_test.cpp, computed by Hugging Face
transformers: apply_chat_template(..., return_assistant_tokens_mask=True) on a chat template whose
assistant turns are wrapped in {% generation %} ... {% endgeneration %} (the test gives forma the
same template without those tags), tokenized by the `tokenizers` library from tokenizer.json.

usage: sft_mask_reference.py IN.json OUT.json
IN:  {"tokenizer": ".../tokenizer.json", "cases": [{"template": ..., "special": {...}, "messages": [...]}]}
OUT: [{"text": rendered, "ids": [...], "mask": [0/1 ...]}, ...]
"""
import json
import sys

from transformers import PreTrainedTokenizerFast


def main():
    request = json.load(open(sys.argv[1], encoding="utf-8"))
    out = []
    for case in request["cases"]:
        tok = PreTrainedTokenizerFast(tokenizer_file=request["tokenizer"], **case["special"])
        text = tok.apply_chat_template(case["messages"], chat_template=case["template"], tokenize=False)
        enc = tok.apply_chat_template(case["messages"], chat_template=case["template"], tokenize=True,
                                      return_dict=True, return_assistant_tokens_mask=True)
        out.append({"text": text, "ids": list(enc["input_ids"]), "mask": list(enc["assistant_masks"])})
    json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))


if __name__ == "__main__":
    main()
