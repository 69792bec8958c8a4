#!/bin/bash
# A/B of two release builds on `bench post` (16 keep-alive clients posting,
# with the raw HTTP ceiling in each invocation), alternating, server on
# CPU 0 and generator on CPU 1.
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR ROUNDS
before=$1; after=$2; out=$3; rounds=${4:-4}; mkdir -p "$out"
run() {  # label bin
  local label=$1 bin=$2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench post --duration 10 --server-cpus 0" >> "$out/runs.log"
  taskset -c 1 "$bin" bench post --duration 10 --server-cpus 0 --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth / ceiling' "$out/$label.txt")"
}
for i in $(seq 1 "$rounds"); do
  run post-before-$i "$before"
  run post-after-$i "$after"
done
