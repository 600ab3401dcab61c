#!/usr/bin/env bash
# Runs the fuzzers `make fuzz` built (mk/fuzz.mk), one after the other:
#   fuzz/run.sh OUT harness:max_len...
# FUZZ_TIME seconds each (60), or FUZZ_RUNS executions each when set. One fuzzing process at a
# time, at the lowest priority: libFuzzer's -jobs=1 -workers=1 runs it as a child that logs to
# OUT/work/<harness>/fuzz-0.log (printed when it ends); the corpus it grows is
# OUT/work/<harness>/corpus, kept from run to run. Then a markdown table of what each did,
# also written to OUT/results.md. An input that crashed a harness (a sanitizer report, a leak,
# a broken invariant, a timeout, running out of memory) is copied to
# spec/fixtures/fuzz/<harness>/, which spec/fuzz_spec.lua replays; the exit status is then 1.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
out=$1
shift
time=${FUZZ_TIME:-60}
runs=${FUZZ_RUNS:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)

rows=()
failed=0
for item in "$@"; do
  name=${item%%:*}
  max_len=${item#*:}
  work=$out/work/$name
  mkdir -p "$work/corpus"
  rm -rf "$work/artifacts" "$work"/fuzz-*.log
  mkdir -p "$work/artifacts"
  args=(-max_len="$max_len" -print_final_stats=1 -workers=1 -jobs=1 -timeout=10
        -artifact_prefix="$work/artifacts/")
  if [ -n "$runs" ]; then
    args+=(-runs="$runs")
    what="$runs runs"
  else
    args+=(-max_total_time="$time")
    what="$time s"
  fi
  [ -f "$root/fuzz/dict/$name.dict" ] && args+=(-dict="$root/fuzz/dict/$name.dict")
  echo "== fuzz: $name ($what, max_len $max_len)"
  # The corpus being grown first (libFuzzer adds to it), the committed seeds after (read only).
  (cd "$work" && nice -n 19 "$out/$name" "${args[@]}" "$work/corpus" "$root/fuzz/corpus/$name") \
    > "$work/run.log" 2>&1
  status=$?
  log=$work/fuzz-0.log
  [ -f "$log" ] || log=$work/run.log
  grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|==[0-9]+==ERROR|SUMMARY|fuzz: |INFO: seed corpus)' "$log" \
    | sed 's/^/   /'
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  crashes=0
  for f in "$work/artifacts"/*; do
    [ -f "$f" ] || continue
    case $(basename "$f") in crash-*|leak-*|timeout-*|oom-*) ;; *) continue ;; esac
    crashes=$((crashes + 1))
    mkdir -p "$root/spec/fixtures/fuzz/$name"
    cp "$f" "$root/spec/fixtures/fuzz/$name/"
    echo "   found: spec/fixtures/fuzz/$name/$(basename "$f")"
  done
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    echo "   $name exited with status $status and left no input behind; its log: $log"
    tail -n 20 "$log" | sed 's/^/   /'
    crashes="failed (exit $status)"
  fi
  [ "$crashes" != 0 ] && failed=1
  echo "   $name: ${execs:-?} executions, ${cov:-?} coverage edges, crashes: $crashes"
  rows+=("| $name | ${execs:-?} | ${cov:-?} | $crashes |")
done

{
  if [ -n "$runs" ]; then echo "make fuzz FUZZ_RUNS=$runs"; else echo "make fuzz FUZZ_TIME=$time"; fi
  echo "($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(${FUZZ_CC:-clang-14} --version | head -n 1))"
  echo
  echo "| harness | execs | coverage edges | crashes |"
  echo "| --- | ---: | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
} > "$out/results.md"
echo
cat "$out/results.md"
exit $failed
