"""lm-evaluation-harness scoring a multiple-choice task through `forma serve` (its local-completions
model, echo logprobs, tokens from the folder's tokenizer through transformers) must give the accuracy
`forma eval` gives on the same file. Usage: lm_eval_server.py FORMA MODEL_DIR SCRATCH"""
import json
import os
import random
import subprocess
import sys

FORMA, MODEL, SCRATCH = sys.argv[1:4]
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HOME"] = os.path.join(SCRATCH, "hf-home")

from serve_util import Server  # noqa: E402


def write_task():
    """24 questions with choices of different lengths (so acc and acc_norm can differ)."""
    rng = random.Random(3)
    words = ["red", "blue", "a cat", "the sea", "green tea", "one", "two birds", "north", "a long winding river", "sky"]
    data = os.path.join(SCRATCH, "mc.jsonl")
    with open(data, "w") as f:
        for i in range(24):
            choices = rng.sample(words, 4)
            f.write(json.dumps({"context": f"Question {i}: which is it?\nAnswer:", "choices": choices,
                                "gold": rng.randrange(4)}) + "\n")
    task_dir = os.path.join(SCRATCH, "tasks")
    os.makedirs(task_dir, exist_ok=True)
    with open(os.path.join(task_dir, "forma_mc.yaml"), "w") as f:
        f.write(f"""task: forma_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
  - metric: acc_norm
""")
    return data, task_dir


def main():
    data, task_dir = write_task()
    report = os.path.join(SCRATCH, "forma_eval.json")
    subprocess.run([FORMA, "eval", "--model", MODEL, "--task", "multiple_choice", "--data", data, "--out", report,
                    "--device", "cpu"], check=True, capture_output=True)
    with open(report) as f:
        want = json.load(f)["metrics"]

    import lm_eval
    from lm_eval.tasks import TaskManager

    server = Server(FORMA, MODEL, SCRATCH)
    try:
        results = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=f"base_url={server.url}/v1/completions,model=tiny,tokenizer={MODEL},"
                       "tokenizer_backend=huggingface,tokenized_requests=True,num_concurrent=1,max_retries=1,"
                       "max_length=1024",
            tasks=["forma_mc"],
            task_manager=TaskManager(include_path=task_dir),
            batch_size=1,
        )
    finally:
        code = server.stop()
    got = results["results"]["forma_mc"]
    print(f"forma eval: {want}\nlm-eval through forma serve: acc {got['acc,none']}, acc_norm {got['acc_norm,none']}")
    ok = code == 0
    ok &= abs(got["acc,none"] - want["acc"]) < 1e-9
    ok &= abs(got["acc_norm,none"] - want["acc_norm"]) < 1e-9
    if not ok:
        print("MISMATCH (or exit status", code, ")\n", server.log_text()[-3000:])
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
