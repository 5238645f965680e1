#!/bin/sh
# Starts a bench process with the open-file limit raised to the hard limit (one stream = one
# file descriptor) and, when taskset exists and a CPU list is given, pinned to those CPUs so the
# server and the load generator never compete for the same core.
# usage: launch.sh <cpu-list | -> <command> [args...]
cpus="$1"
shift
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$cpus" != "-" ] && command -v taskset >/dev/null 2>&1; then
  exec taskset -c "$cpus" "$@"
fi
exec "$@"
