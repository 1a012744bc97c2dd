#!/usr/bin/env bash
# make bench: every benchmark, each reporting against a baseline measured in the same run.
#  1. tokenizer encode MB/s on Moby Dick (Google Benchmark; build/forma_bench_micro)
#  2. GPT-2-124M training steps, forma vs PyTorch eager (bench/train_vs_pytorch.sh)
#  3. the parallel layouts (dp, ZeRO-1, tp, tp+sp) against one process (bench/parallel_layouts.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
echo "== tokenizer encode throughput"
"$build/forma_bench_micro" --benchmark_min_time=1
echo "== training: forma vs PyTorch eager"
FORMA="$build/forma" bash bench/train_vs_pytorch.sh "${TRAIN_STEPS:-3}"
echo "== parallel layouts vs one process (GPT-2-124M)"
FORMA="$build/forma" bash bench/parallel_layouts.sh "${TRAIN_STEPS:-3}"
