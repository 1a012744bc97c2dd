#!/usr/bin/env bash
# Fault injection: a tiny training run killed with SIGKILL at random moments (half of the kills
# aimed at checkpoint saves: when a .tmp-step folder appears), resumed each time with --resume,
# then run to the end; its final checkpoint must be bit-for-bit the one of an uninterrupted run of
# the same seed (the trainer promises exact resume). After every kill `latest` must name a
# committed checkpoint (forma ckpt info exits 0). Then, where a small tmpfs can be mounted (root),
# a full-disk run: the output folder on a tmpfs too small for the checkpoints kept; the save that
# finds the disk full must fail with an error, leave no .tmp-step folder and keep `latest`
# committed; with room again (remount) the run resumes and must end on the same bits too.
# Prints a summary; exits 1 when a check fails.
# Usage: bench/fault_injection.sh [CYCLES] [STEPS]   (defaults 20 and 600; FORMA=path/to/forma, WORK=scratch folder)
set -euo pipefail
cd "$(dirname "$0")/.."
forma=$(realpath "${FORMA:-build/forma}")
cycles=${1:-20}
steps=${2:-600}
work=${WORK:-$(mktemp -d /tmp/forma-faults.XXXXXX)}
mkdir -p "$work"
python=${PYTHON:-python3}

echo "== data: a 320-entry BPE on Moby Dick, 20 chapters tokenized (in $work)"
chapters=(data/moby-dick/chapter_{1..20}.txt)
"$forma" tokenizer train --input "${chapters[@]}" --vocab-size 320 --out "$work/tok" >/dev/null
"$forma" data prepare --input "${chapters[@]}" --tokenizer "$work/tok" --out "$work/data/moby" >/dev/null

# The tiny test recipe (2-layer Llama of the HF fixtures, one thread): a checkpoint every 5 steps.
common=(--config configs/recipes/tiny-test.yaml --set model.path=tests/fixtures/hf-tiny/llama/config.json
  --set "data.prefixes=$work/data/moby" --set "training.max_steps=$steps" --set checkpoint.interval=5
  --set checkpoint.keep_last=2 --set logging.eval_interval=50)

# The files of a checkpoint that hold numbers: weights (HF and distributed), AdamW state, metadata, step.
same_checkpoint() {  # DIR_A DIR_B
  local f
  for f in model.safetensors shards/rank-00000.safetensors metadata.json; do
    cmp -s "$1/$f" "$2/$f" || { echo "differs: $f" >&2; return 1; }
  done
  [ "$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$1/trainer_state.json")" = \
    "$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$2/trainer_state.json")" ]
}
# step and loss of every training record of metrics.jsonl, as text
losses() { "$python" -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "loss" in r: print(r["step"], json.dumps(r["loss"]))' "$1"; }

echo "== reference: $steps steps uninterrupted"
start=$(date +%s.%N)
"$forma" train "${common[@]}" --set "output_dir=$work/ref" >"$work/ref.log" 2>&1
run_seconds=$("$python" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
echo "   $run_seconds s"

echo "== $cycles cycles of kill -9 and resume"
out=$work/faulty
ckpts=$out/checkpoints
new_temps() { find "$ckpts" -maxdepth 1 -name '.tmp-step-*' -newer "$work/started" 2>/dev/null; }
kills=0 kills_in_save=0 resumes=0 fresh_starts=0 uncommitted_latest=0 finished_early=0 failures=0
for ((cycle = 1; cycle <= cycles; cycle++)); do
  args=("${common[@]}" --set "output_dir=$out")
  if [ -e "$ckpts/latest" ]; then args+=(--resume); resumes=$((resumes + 1)); else fresh_starts=$((fresh_starts + 1)); fi
  touch "$work/started"  # a .tmp-step folder newer than this one is this process's save, not a stale one
  "$forma" train "${args[@]}" >>"$work/faulty.log" 2>&1 &
  pid=$!
  if ((cycle % 2 == 0)); then  # aimed at a save: a .tmp-step folder appears, then 0-9 ms more
    deadline=$((${EPOCHREALTIME/./} + ${run_seconds%.*} * 1000000 + 1000000))
    while kill -0 "$pid" 2>/dev/null && [ -z "$(new_temps)" ]; do
      ((${EPOCHREALTIME/./} < deadline)) || break
    done
    sleep "0.00$((RANDOM % 10))"
  else  # anywhere in the next 2 s, startup (about 0.5 s) included
    sleep "$("$python" -c "import random; print(random.uniform(0.05, 2.0))")"
  fi
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    if [ -n "$(new_temps)" ]; then kills_in_save=$((kills_in_save + 1)); fi
    if [ -e "$ckpts/latest" ] && ! "$forma" ckpt info "$ckpts/latest" >/dev/null 2>&1; then
      uncommitted_latest=$((uncommitted_latest + 1))
      echo "cycle $cycle: latest is not a committed checkpoint" >&2
    fi
  else  # it reached max_steps before the kill: nothing left to interrupt
    wait "$pid" || failures=$((failures + 1))
    finished_early=1
    break
  fi
done
cycles_run=$((cycle > cycles ? cycles : cycle))
args=("${common[@]}" --set "output_dir=$out")
if ((finished_early == 0)); then
  [ -e "$ckpts/latest" ] && args+=(--resume) && resumes=$((resumes + 1))
  "$forma" train "${args[@]}" >>"$work/faulty.log" 2>&1 || failures=$((failures + 1))
fi
if same_checkpoint "$work/ref/checkpoints/latest" "$ckpts/latest" &&
  [ "$(losses "$work/ref/metrics.jsonl")" = "$(losses "$out/metrics.jsonl")" ]; then
  result="bit-exact (weights, AdamW state, metadata, step, every logged loss)"
else
  result="DIFFERENT from the uninterrupted run"
  failures=$((failures + 1))
fi

disk_result="skipped (cannot mount a tmpfs here: needs root)"
mnt=$work/small-disk
mkdir -p "$mnt"
ckpt_kib=$(du -sk -L "$work/ref/checkpoints/latest" | cut -f1)
disk_kib=$((ckpt_kib * 5 / 2 + 64))  # 2 checkpoints kept and a bit: the third one cannot be written
if mount -t tmpfs -o "size=${disk_kib}k" tmpfs "$mnt" 2>/dev/null; then
  echo "== full disk: output on a ${disk_kib} KiB tmpfs (a checkpoint takes ${ckpt_kib} KiB; 2 kept + 1 being written)"
  trap 'umount "$mnt" 2>/dev/null || true' EXIT
  disk_args=("${common[@]}" --set "output_dir=$mnt/run")
  set +e
  "$forma" train "${disk_args[@]}" >"$work/disk.log" 2>&1
  status=$?
  set -e
  used=$(df --output=used -k "$mnt" | tail -1 | tr -d ' ')
  checks=()
  [ "$status" = 1 ] || checks+=("exit status $status, not 1")
  grep -q "^error: the checkpoint of step .* could not be saved" "$work/disk.log" || checks+=("no error naming the save")
  ! compgen -G "$mnt/run/checkpoints/.tmp-step-*" >/dev/null || checks+=("a .tmp-step folder was left")
  "$forma" ckpt info "$mnt/run/checkpoints/latest" >/dev/null 2>&1 || checks+=("latest is not committed")
  failed_at=$(sed -n 's/^error: the checkpoint of step \([0-9]*\).*/\1/p' "$work/disk.log")
  mount -o remount,size=64m "$mnt"
  "$forma" train "${disk_args[@]}" --resume >>"$work/disk.log" 2>&1 || checks+=("the resume with room failed")
  same_checkpoint "$work/ref/checkpoints/latest" "$mnt/run/checkpoints/latest" || checks+=("final weights differ")
  if [ ${#checks[@]} = 0 ]; then
    disk_result="ok: the save of step $failed_at failed (exit 1, error printed), no .tmp-step left (${used} KiB used of ${disk_kib}), latest committed; resumed with room: bit-exact"
  else
    disk_result="FAILED: ${checks[*]}"
    failures=$((failures + 1))
  fi
  umount "$mnt"
  trap - EXIT
fi

echo
echo "== summary"
echo "cycles                      $cycles_run of $cycles (steps $steps, a checkpoint every 5)$( ((finished_early)) && echo ': the run ended before the last kill')"
echo "kills (SIGKILL)             $kills"
echo "  of them during a save     $kills_in_save (a .tmp-step folder of that process was there; removed by the next start)"
echo "  latest not committed      $uncommitted_latest"
echo "runs resumed (--resume)     $resumes"
echo "fresh starts                $fresh_starts"
echo "final checkpoint            $result"
echo "full disk                   $disk_result"
echo "logs in $work"
[ "$failures" = 0 ]
