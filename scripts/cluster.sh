#!/usr/bin/env bash
# The local cluster: set up if needed, then NATS + three nodes + the entry port + the demo producer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node_modules/.bin/bun run cluster "$@"
