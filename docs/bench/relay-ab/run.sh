#!/bin/bash
# A/B of two release builds, alternating: the seed load pinned (server on
# CPU 0, generator on CPU 1), the seed load with both cores free, and many
# rooms pinned. Each run measures the raw ceiling in the same invocation.
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin [free] args...
  local label=$1 bin=$2; shift 2
  local pin="taskset -c 1"
  if [ "$1" = free ]; then pin=""; shift; fi
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: $pin BIN bench $*" >> "$out/runs.log"
  $pin "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'latency p50|hearth / ceiling|verification' "$out/$label.txt" | tr '\n' ' ')"
}
for i in 1 2 3; do
  run seed-before-$i "$before" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
  run seed-after-$i "$after" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
done
for i in 1 2; do
  run free-before-$i "$before" free fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
  run free-after-$i "$after" free fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
done
for i in 1 2; do
  run rooms-before-$i "$before" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
  run rooms-after-$i "$after" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
done
