#!/usr/bin/env bash
# forma vs PyTorch eager (the torch wheel forma's LibTorch comes from) on the same GPT-2-124M training
# steps (random tokens, vocab 50257, AdamW, B=4, T=256, 2 threads), in fp32 and in bf16 mixed
# precision, in one run. Prints tokens/s of both and the ratio forma / PyTorch for each precision.
# Usage: bench/train_vs_pytorch.sh [STEPS] [PRECISIONS]   (FORMA=path/to/forma, PYTHON=path/to/python)
set -euo pipefail
cd "$(dirname "$0")/.."
forma=${FORMA:-build/forma}
python=${PYTHON:-.venv/bin/python3}
steps=${1:-5}
precisions=${2:-fp32 bf16}
export OMP_NUM_THREADS=2

for precision in $precisions; do
  echo "== $precision: PyTorch eager $("$python" -c 'import torch; print(torch.__version__)')"
  py=$("$python" bench/train_pytorch.py --steps "$steps" --warmup 2 --threads 2 --precision "$precision" | tail -1)
  echo "$py"
  echo "== $precision: forma"
  fm=$("$forma" bench train --config configs/recipes/bench-gpt2-124m.yaml --steps "$steps" --warmup 2 \
        --set training.precision="$precision" --set training.device=cpu | tail -1)
  echo "$fm"
  "$python" - "$precision" "$py" "$fm" <<'PY'
import json, sys
precision, py, fm = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{precision} tokens/s: PyTorch {py['tokens_per_sec']:.1f}  forma {fm['tokens_per_sec']:.1f}  "
      f"ratio forma/PyTorch {fm['tokens_per_sec'] / py['tokens_per_sec']:.2f}  (forma MFU {100 * fm['mfu']:.1f}%)")
PY
done
