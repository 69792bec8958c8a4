#!/bin/bash
# A/B of two release builds, alternating: the seed load with both cores free
# and one runtime thread (HEARTH_WORKERS=1), the raw ceiling in each run.
# Usage: run-w1.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: BIN bench $*" >> "$out/runs.log"
  "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'latency p50|hearth / ceiling|verification' "$out/$label.txt" | tr '\n' ' ')"
}
for i in 1 2 3; do
  run free-w1-before-$i "$before" fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0 --server-env HEARTH_WORKERS=1
  run free-w1-after-$i "$after" fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0 --server-env HEARTH_WORKERS=1
done
