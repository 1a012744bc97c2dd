#!/usr/bin/env bash
# The main job, end to end in one process: train a BPE tokenizer on Moby Dick, turn the book into an
# indexed dataset, train a small Llama-style model on it from configs/recipes/demo.yaml, then sample
# from the trained model. Every step is one forma command; change them here or in the recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
forma=${FORMA:-build/forma}
out=${DEMO_DIR:-runs/demo}
book=(data/moby-dick/chapter_*.txt)   # 135 chapters, one document each (public domain, data/moby-dick/LICENSE)
start=$(date +%s)
mkdir -p "$out"

echo "== 1/4 train a byte-level BPE tokenizer (vocabulary 4096) on the book"
"$forma" tokenizer train --input "${book[@]}" --vocab-size 4096 --out "$out/tokenizer"

echo "== 2/4 tokenize the book into an indexed dataset ($out/data/moby.bin/.idx)"
"$forma" data prepare --input "${book[@]}" --tokenizer "$out/tokenizer" --out "$out/data/moby"

echo "== 3/4 train (configs/recipes/demo.yaml; metrics in $out/train/metrics.jsonl, plot in loss.svg)"
"$forma" train --config configs/recipes/demo.yaml \
  --set tokenizer.path="$out/tokenizer" --set data.prefixes="$out/data/moby" \
  --set output_dir="$out/train" "$@"

echo "== 4/4 sample from the trained model"
"$forma" generate --model "$out/train/checkpoints/latest" --prompt "Call me Ishmael. " \
  --max-new-tokens 80 --temperature 0.8 --top-p 0.95 --seed 1
echo
echo "demo finished in $(( $(date +%s) - start )) s; validation loss by step:"
grep val_loss "$out/train/metrics.jsonl" || true
