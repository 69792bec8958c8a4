#!/bin/bash
# A/B of two release builds, alternating, for the append-aware leaf split
# in the vendored sled: many rooms pinned (the committer's share is largest
# there), HTTP posts (the commit path's limit) and the seed load pinned (the
# fan-out must not slow). Server on CPU 0, generator on CPU 1; each fan-out
# run measures the raw ceiling in the same invocation.
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'latency p50|hearth / ceiling|verification|requests/s' "$out/$label.txt" | tr '\n' ' ')"
}
for i in 1 2 3; do
  run rooms-before-$i "$before" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
  run rooms-after-$i "$after" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
done
for i in 1 2; do
  run post-before-$i "$before" post --duration 10 --server-cpus 0
  run post-after-$i "$after" post --duration 10 --server-cpus 0
done
for i in 1 2; do
  run seed-before-$i "$before" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
  run seed-after-$i "$after" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
done
