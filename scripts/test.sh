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
log=$(mktemp)
# Tests and hooks that set no timeout of their own get 60 s: bunfig.toml's [test] timeout is not
# applied by this Bun (a browser test timed out at its 5 s default on a loaded machine).
node_modules/.bin/bun test --timeout=60000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
pass=$(grep -Eo '^ *[0-9]+ pass' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
fail=$(grep -Eo '^ *[0-9]+ fail' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
rm -f "$log"
echo "${pass} passed, ${fail} failed"
exit "$status"
