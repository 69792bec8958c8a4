#!/bin/bash
# A/B of the system allocator (glibc, the default build) against mimalloc
# (`--features mimalloc`), same commit, alternating.
# Usage: run.sh SYSTEM_BIN MIMALLOC_BIN OUT_DIR
# Server on CPU 0 (--server-cpus 0), generator on CPU 1 (taskset).
sys=$1; mi=$2; out=$3; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth / ceiling|verification|req/s' "$out/$label.txt" | head -3 | tr '\n' ' ')"
}
for i in 1 2; do
  run post-system-$i "$sys" post --duration 10 --server-cpus 0
  run post-mimalloc-$i "$mi" post --duration 10 --server-cpus 0
done
for i in 1 2; do
  run rooms-system-$i "$sys" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
  run rooms-mimalloc-$i "$mi" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
done
for i in 1 2; do
  run seed-system-$i "$sys" fanout --clients 15000 --posters 4 --rate 117 --duration 15 --server-cpus 0
  run seed-mimalloc-$i "$mi" fanout --clients 15000 --posters 4 --rate 117 --duration 15 --server-cpus 0
done
