#!/usr/bin/env bash
# forma vs PyTorch eager on the same GPT-2-124M training steps (random tokens, vocab 50257, AdamW,
# B=4, T=256, 2 threads, fp32), in one run. Prints both tokens/s and the ratio forma / PyTorch.
# Usage: bench/train_vs_pytorch.sh [STEPS]   (FORMA=path/to/forma to pick a build)
set -euo pipefail
cd "$(dirname "$0")/.."
forma=${FORMA:-build/forma}
steps=${1:-5}
export OMP_NUM_THREADS=2

echo "== PyTorch eager ($(/usr/bin/python3 -c 'import torch; print(torch.__version__)'))"
py=$(/usr/bin/python3 bench/train_pytorch.py --steps "$steps" --warmup 2 --threads 2 | tail -1)
echo "$py"
echo "== forma"
fm=$("$forma" bench train --config configs/recipes/bench-gpt2-124m.yaml --steps "$steps" --warmup 2 | tail -1)
echo "$fm"
/usr/bin/python3 - "$py" "$fm" <<'PY'
import json, sys
py, fm = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"tokens/s: PyTorch {py['tokens_per_sec']:.1f}  forma {fm['tokens_per_sec']:.1f}  "
      f"ratio forma/PyTorch {fm['tokens_per_sec'] / py['tokens_per_sec']:.2f}  (forma MFU {100 * fm['mfu']:.1f}%)")
PY
