#!/usr/bin/env bash
# Step time and peak memory per rank of the parallel layouts against one process, on the same
# global batch (GPT-2-124M, B=4 as 2 micro-batches of 2, T=256, random tokens, fp32) in one run:
# one process (2 threads), then 2 processes of 1 thread each: dp=2, dp=2 with ZeRO-1, tp=2,
# tp=2 with sequence parallel. On one 2-core machine the ranks share the cores, so the ratio
# measures the overhead of the parallel scheme (communication, smaller matmuls), not a speed-up.
# Usage: bench/parallel_layouts.sh [STEPS] [CONFIG]   (FORMA=path/to/forma to pick a build)
set -euo pipefail
cd "$(dirname "$0")/.."
forma=${FORMA:-build/forma}
steps=${1:-3}
config=${2:-configs/recipes/bench-gpt2-124m.yaml}
common=(--config "$config" --steps "$steps" --warmup 1 --set schedule.warmup_steps=0 --set training.micro_batch_size=2 --set training.grad_accum_steps=2)

run() {  # NAME PROCESSES EXTRA-ARGS...: prints NAME and the bench's JSON line
  local name=$1 processes=$2
  shift 2
  echo "== $name" >&2
  local line
  if [ "$processes" = 1 ]; then
    line=$("$forma" bench train "${common[@]}" --set training.threads=2 "$@" | tail -1)
  else
    line=$("$forma" launch --nproc-per-node "$processes" -- forma bench train "${common[@]}" \
      --set training.threads=1 "$@" | grep '^\[rank 0\] {' | sed 's/^\[rank 0\] //')
  fi
  echo "$name	$line"
}

{
  run "one process" 1
  run "dp=2" 2 --set parallel.data_parallel=2
  run "dp=2 zero_stage=1" 2 --set parallel.data_parallel=2 --set parallel.zero_stage=1
  run "tp=2" 2 --set parallel.tensor_parallel=2
  run "tp=2 sequence_parallel" 2 --set parallel.tensor_parallel=2 --set parallel.sequence_parallel=true
} | "${PYTHON:-.venv/bin/python3}" -c '
import json, sys
rows = [(name, json.loads(line)) for name, line in (l.rstrip("\n").split("\t", 1) for l in sys.stdin)]
base = rows[0][1]["step_time_sec"]
print("%-24s %8s %15s %9s  %s" % ("layout", "step s", "vs one process", "tokens/s", "peak RSS per rank (GB)"))
for name, r in rows:
    rss = " / ".join("%.2f" % (mb / 1024) for mb in r["peak_rss_mb_per_rank"])
    print("%-24s %8.3f %14.2fx %9.1f  %s" % (name, r["step_time_sec"], r["step_time_sec"] / base, r["tokens_per_sec"], rss))
'
