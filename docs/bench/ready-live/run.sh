#!/bin/bash
# Seed load pinned, before and after the ready/release change, alternating.
# Server on CPU 0, generator on CPU 1; the raw ceiling runs in the same
# invocation. Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'latency p50|hearth / ceiling|verification' "$out/$label.txt" | tr '\n' ' ')"
}
for i in 1 2; do
  run seed-before-$i "$before" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
  run seed-after-$i "$after" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
done
