#!/usr/bin/env bash
# The test command: set up if needed, type-check, check format and lint, then run every test with bun test.
# Prints bun's own summary and the plain line "N passed, N failed" that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# Integration tests open thousands of sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== tsc --noEmit"
npx --no-install tsc --noEmit || { echo "0 passed, 1 failed"; exit 1; }

echo "== biome ci (format and lint)"
node_modules/.bin/biome ci --colors=off . || { echo "0 passed, 1 failed"; exit 1; }

echo "== bun test"
# Test files run in TEST_WORKERS processes (default 2, one per core of the machines CI uses): the suite
# mostly waits on the servers it starts, so two at a time take about 8 minutes where one took 14. Every
# file gets a fresh global (--isolate, implied), test/helpers/listenPort.ts keeps the workers' ports
# apart, and test/timings.json (per-file durations of a full run) starts the longest files first.
# TEST_WORKERS=1 runs one file at a time.
workers=${TEST_WORKERS:-2}
case "$workers" in
  '' | *[!0-9]* | 0) echo "TEST_WORKERS must be a whole number of processes, 1 or more (got \"$workers\")"; echo "0 passed, 1 failed"; exit 1 ;;
esac
parallel=()
[ "$workers" -gt 1 ] && parallel=(--parallel="$workers" --timings=test/timings.json)
log=$(mktemp)
# Tests and hooks that set no timeout of their own get 60 s: bunfig.toml's [test] timeout is not
# applied by this Bun (a browser test timed out at its 5 s default on a loaded machine).
node_modules/.bin/bun test --timeout=60000 "${parallel[@]}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
pass=$(grep -Eo '^ *[0-9]+ pass' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
fail=$(grep -Eo '^ *[0-9]+ fail' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
rm -f "$log"
echo "${pass} passed, ${fail} failed"
exit "$status"
