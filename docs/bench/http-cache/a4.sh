#!/bin/bash
# The f98078a rows: window-only pages alternating c070de3 and f98078a, then
# the default history load alternating before and f98078a.
# Usage: a4.sh BEFORE C070DE3 F98078A (release binaries copied aside)
set -u
BEFORE=$1; A3=$2; A4=$3
cd "$(dirname "$0")"
run() { local label=$1 bin=$2; shift 2
  echo "$label start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs.log
  taskset -c 1 "$bin" bench history --clients 16 --duration 10 --server-cpus 0 "$@" --json-file $label.json > $label.txt 2>/dev/null
  echo "$label end   $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs.log; }
run history-prefill200-after-3 "$A3" --prefill 200
run history-prefill200-f98078a-1 "$A4" --prefill 200
run history-prefill200-after-4 "$A3" --prefill 200
run history-prefill200-f98078a-2 "$A4" --prefill 200
run history-before-3 "$BEFORE"
run history-f98078a-1 "$A4"
run history-before-4 "$BEFORE"
run history-f98078a-2 "$A4"
