#!/usr/bin/env bash
# Run the fuzz targets under atheris (the fuzz extra: pip install -e '.[fuzz]').
#
#   bash fuzz/run.sh smoke [RUNS]      each target for RUNS inputs (default 100000): CI's run
#   bash fuzz/run.sh long [SECONDS]    each target for SECONDS (default 600): the long run
#   TARGETS="engine url" bash fuzz/run.sh ...   only those targets
#
# Each target starts from its seed corpus (fuzz/corpus/TARGET) and writes what it learns to
# a scratch corpus in WORK (default: a new temporary directory), never to the repository.
# An input that breaks an invariant is saved as WORK/TARGET-crash-*, and the run fails.
# Prints one line per target: the inputs executed, the time, the corpus size, the result.
set -uo pipefail
cd "$(dirname "$0")/.."

mode="${1:-smoke}"
PYTHON="${PYTHON:-.venv/bin/python}"
WORK="${WORK:-$(mktemp -d -t wsapi-fuzz.XXXXXX)}"
TARGETS="${TARGETS:-engine handshake deflate url proxy}"
case "$mode" in
    smoke) limit=(-runs="${2:-100000}") ;;
    long) limit=(-max_total_time="${2:-600}") ;;
    *) echo "usage: $0 smoke [RUNS] | long [SECONDS]" >&2; exit 2 ;;
esac

failed=0
for target in $TARGETS; do
    mkdir -p "$WORK/$target"
    log="$WORK/$target.log"
    start=$SECONDS
    # -max_len: the largest input mutated (big enough for a handshake head with a body).
    "$PYTHON" "fuzz/fuzz_$target.py" "$WORK/$target" "fuzz/corpus/$target" "${limit[@]}" \
        -max_len=8192 -artifact_prefix="$WORK/$target-" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    corpus="$(ls "$WORK/$target" | wc -l)"
    if [ "$rc" -eq 0 ]; then
        result="no finding"
    else
        result="FAILED (exit $rc): $(ls "$WORK" | grep "^$target-" | tr '\n' ' ')"
        failed=1
        grep -E "Error|assert" "$log" | tail -n 5
    fi
    printf '%-10s %10s inputs %5d s  corpus %5d  %s\n' \
        "$target" "${runs:-?}" $((SECONDS - start)) "$corpus" "$result"
done
echo "work directory (scratch corpora, logs, findings): $WORK"
exit "$failed"
