#!/usr/bin/env bash
# Runs the libFuzzer targets of build-fuzz for SECONDS each: fuzz/run.sh [SECONDS] [TARGET...]
# (default: 60 s, every target). Each starts from its committed seeds (fuzz/corpus/<target>, read
# only) plus what earlier runs found (build-fuzz/corpus/<target>, where new inputs go); a crash,
# sanitizer report, leak, timeout or out-of-memory is saved under build-fuzz/findings/<target>/ and
# makes the script fail. FUZZ_PARALLEL=N runs N targets at once (each single-threaded, niced).
# Prints each target's executions and coverage (libFuzzer's cov: and ft:) at the end.
# FUZZ_KNOWN_FAILING="name ..." (target names without fuzz_): findings there are reported and saved
# but do not fail the run (for known, unfixed findings owned elsewhere; see fuzz/findings/).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD:-build-fuzz}
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# A dictionary per input language (fuzz/*.dict). -max_len: a little above the largest seed of each target; tokenizer.json and chat templates are
# larger texts. -timeout: seconds for one input (a hang is a finding). -rss_limit_mb: 2 GB per run.
max_len() {
  case "$1" in
    fuzz_tokenizer_json) echo 16384 ;;
    fuzz_chat_template) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

dict() {
  case "$1" in
    fuzz_recipe) echo fuzz/yaml.dict ;;
    fuzz_chat_template) echo fuzz/jinja.dict ;;
    fuzz_indexed_dataset) ;;
    *) echo fuzz/json.dict ;;
  esac
}

run_one() {
  local target=$1 name=${1#fuzz_}
  local dict corpus="$build/corpus/$name" findings="$build/findings/$name" log="$build/logs/$1.log"
  mkdir -p "$corpus" "$findings" "$build/logs"
  dict=$(dict "$target")
  nice -n "${FUZZ_NICE:-10}" "$build/$target" "$corpus" "fuzz/corpus/$name" -max_total_time="$seconds" -max_len="$(max_len "$target")" \
    -timeout=10 -rss_limit_mb=2048 ${dict:+-dict="$dict"} -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
  local rc=$?
  local stats
  stats=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1)
  local execs
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  if [ $rc -eq 0 ]; then
    echo "fuzz: $target ok: ${execs:-?} executions; ${stats}"
    return 0
  fi
  local known=""
  case " ${FUZZ_KNOWN_FAILING:-} " in *" $name "*) known=" (known failing: not counted)" ;; esac
  echo "fuzz: $target FAILED (rc $rc)$known: see $log and $findings/"
  grep -E 'ERROR: |SUMMARY: |runtime error|ALARM' "$log" | head -5 | sed 's/^/    /'
  [ -n "$known" ] && return 0
  return $rc
}
export -f run_one max_len dict
export build seconds

status=0
if [ "${FUZZ_PARALLEL:-1}" -gt 1 ]; then
  printf '%s\n' "${targets[@]}" | xargs -P "$FUZZ_PARALLEL" -I{} bash -c 'run_one {}' || status=1
else
  for t in "${targets[@]}"; do run_one "$t" || status=1; done
fi
exit $status
