#!/usr/bin/env bash
# The before/after runs of BENCHMARKS.md's "shared room feeds" section.
# Usage: docs/bench/feed-ab/run.sh BEFORE_BINARY AFTER_BINARY OUT_DIR
# Each binary serves and drives its own runs (server on CPU 0, generator on
# CPU 1); runs alternate before/after so drift on a shared machine hits both.
# Every command and the load average before it go to OUT_DIR/runs.log.
set -uo pipefail
before=$1; after=$2; out=$3
mkdir -p "$out"
run() {  # run NAME BINARY ARGS...
  local name=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg): taskset -c 1 $(basename "$bin") $* --json-file $name.json" >>"$out/runs.log"
  taskset -c 1 "$bin" "$@" --json-file "$out/$name.json" >"$out/$name.txt" 2>&1
}
seed="bench fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0"
rooms="bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0"
for round in 1 2; do
  run seed-before-$round "$before" $seed
  run seed-after-$round "$after" $seed
done
run rooms-before "$before" $rooms
run rooms-after "$after" $rooms
for n in 5000 10000; do
  run ladder-$n-after "$after" bench fanout --clients $n --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
done
run unpinned-before "$before" bench fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
run unpinned-after "$after" bench fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
for round in 1 2; do
  run history-before-$round "$before" bench history --server-cpus 0
  run history-after-$round "$after" bench history --server-cpus 0
  run post-before-$round "$before" bench post --server-cpus 0
  run post-after-$round "$after" bench post --server-cpus 0
done
