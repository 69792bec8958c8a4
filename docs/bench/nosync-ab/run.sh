#!/bin/bash
# A/B of two release builds: sled's log writes without the device wait and
# written on the flushing thread (after) against sled as it was (before).
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR
# Server on CPU 0 (--server-cpus 0), generator on CPU 1 (taskset), runs
# alternating so drift in the machine's load falls on both builds.
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin [env K=V] args...
  local label=$1 bin=$2; shift 2
  local envs=()
  if [ "$1" = env ]; then envs=("$2"); shift 2; fi
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: ${envs[*]} taskset -c 1 BIN bench $*" >> "$out/runs.log"
  env "${envs[@]}" taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth / ceiling|verification|req/s|posts' "$out/$label.txt" | head -4 | tr '\n' ' ')"
}
for i in 1 2 3; do
  run post-before-$i "$before" post --duration 10 --server-cpus 0
  run post-after-$i "$after" post --duration 10 --server-cpus 0
done
for i in 1 2; do
  run strict-before-$i "$before" env HEARTH_DURABILITY=strict post --duration 10 --server-cpus 0 --no-ceiling
  run strict-after-$i "$after" env HEARTH_DURABILITY=strict post --duration 10 --server-cpus 0 --no-ceiling
done
for i in 1 2; do
  run rooms-before-$i "$before" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
  run rooms-after-$i "$after" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
done
for i in 1 2; do
  run seed-before-$i "$before" fanout --clients 15000 --posters 4 --rate 117 --duration 15 --server-cpus 0 --rss-settle 0
  run seed-after-$i "$after" fanout --clients 15000 --posters 4 --rate 117 --duration 15 --server-cpus 0 --rss-settle 0
done
