#!/usr/bin/env bash
# Peak memory of one forward+backward, fused vs explicit attention, per sequence length: each
# configuration in a fresh process (a process's peak RSS never goes down). Prints a Markdown table.
#   bash bench/attention_memory.sh [MODEL] [LENGTHS...]
# A run that fails (e.g. out of memory under MEM_LIMIT_KB, an address-space limit that keeps the
# explicit kernel's T^2 scores from taking the machine down) is reported as failed.
set -uo pipefail
cd "$(dirname "$0")/.."
forma=${FORMA:-build/forma}
model=${1:-configs/recipes/models/demo-llama-4m.json}
shift || true
lengths=("$@")
[ ${#lengths[@]} -gt 0 ] || lengths=(2048 8192 16384)
echo "| T | kernel | peak RSS (MB) | before the step (MB) | forward+backward (s) |"
echo "|---|---|---|---|---|"
for t in "${lengths[@]}"; do
  for kernel in fused explicit; do
    out=$( (if [ -n "${MEM_LIMIT_KB:-}" ]; then ulimit -v "$MEM_LIMIT_KB"; fi
            "$forma" bench attention --model "$model" --seq-len "$t" --kernel "$kernel") 2>&1)
    json=$(printf '%s\n' "$out" | grep '^{' || true)
    if [ -z "$json" ]; then
      echo "| $t | $kernel | failed: $(printf '%s\n' "$out" | grep -m1 -io 'can.t allocate[^.]*' || echo "$out" | tail -1) | | |"
      continue
    fi
    python3 -c 'import json, sys
j = json.loads(sys.argv[1])
print("| %d | %s | %.0f | %.0f | %.2f |" % (j["seq_len"], j["kernel"], j["peak_rss_mb"], j["rss_before_step_mb"], j["step_time_sec"]))' "$json"
  done
done
