#!/usr/bin/env bash
# The one-command GPU check (make gpu-check): on a machine with CUDA GPUs, after `make build`,
#  1. the tests labelled `cuda` (tests/cuda: GPU logits, generation, fp32/bf16/fp16 training and
#     checkpoints against the CPU; NCCL data parallel when 2+ GPUs are visible),
#  2. a short training run of the demo model under `forma launch` with NCCL on every visible GPU,
#  3. a generation from it on the GPU,
#  4. speed figures: forma bench train (fp32, bf16) and forma bench generate on one GPU,
# and prints the figures. Without a GPU it says so and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
forma="$build/forma"
out=${GPU_CHECK_DIR:-runs/gpu-check}
mkdir -p "$out"

"$forma" env
gpus=$("$forma" env --json | "${PYTHON:-.venv/bin/python3}" -c 'import json, sys; print(json.load(sys.stdin)["cuda_devices"])')
if [ "$gpus" -lt 1 ]; then echo "gpu-check: no CUDA device is visible"; exit 1; fi
start=$(date +%s)

echo "== 1/4 tests labelled cuda"
(cd "$build" && ctest -L cuda --output-on-failure --timeout 900)

echo "== 2/4 demo model, $gpus GPU(s), NCCL data parallel, bf16, 200 steps"
"$forma" tokenizer train --input data/moby-dick/chapter_*.txt --vocab-size 4096 --out "$out/tokenizer"
"$forma" data prepare --input data/moby-dick/chapter_*.txt --tokenizer "$out/tokenizer" --out "$out/data/moby"
"$forma" launch --nproc-per-node "$gpus" --log-dir "$out/logs" -- forma train --config configs/recipes/demo.yaml \
  --set tokenizer.path="$out/tokenizer" --set data.prefixes="$out/data/moby" --set output_dir="$out/train" \
  --set training.device=cuda --set training.precision=bf16 --set training.max_steps=200 \
  --set training.grad_accum_steps="$gpus"

echo "== 3/4 generation on the GPU"
"$forma" generate --model "$out/train/checkpoints/latest" --prompt "Call me Ishmael. " --max-new-tokens 60 \
  --temperature 0.8 --seed 1 --device cuda

echo "== 4/4 speed on one GPU"
for precision in fp32 bf16; do
  "$forma" bench train --config configs/recipes/bench-gpt2-124m.yaml --steps 20 --warmup 3 \
    --set training.device=cuda --set training.precision=$precision --set training.micro_batch_size=16 \
    --set training.seq_len=1024 | tail -2 | head -1 | sed "s/^/train gpt2 124M B16 T1024 $precision: /"
done
"$forma" bench generate --model gpt2 --device cuda --dtype bf16 --batch-sizes 1,16 --pp 512 --tg 128 --reps 3
echo "gpu-check: passed in $(( $(date +%s) - start )) s"
