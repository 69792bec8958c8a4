#!/usr/bin/env bash
# Second pass, after the writer fix: the final build against the same
# "before" build. Usage: final.sh BEFORE AFTER OUT_DIR (see run.sh).
set -uo pipefail
before=$1; after=$2; out=$3
run() {
  local name=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg): taskset -c 1 $(basename "$bin") $* --json-file $name.json" >>"$out/runs.log"
  taskset -c 1 "$bin" "$@" --json-file "$out/$name.json" >"$out/$name.txt" 2>&1
}
free_run() {  # no taskset: the server and the generator may use both cores
  local name=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg): $(basename "$bin") $* --json-file $name.json" >>"$out/runs.log"
  "$bin" "$@" --json-file "$out/$name.json" >"$out/$name.txt" 2>&1
}
seed="bench fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0"
run seed-after-1 "$after" $seed
run seed-after-2 "$after" $seed
run rooms-after "$after" bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
for n in 5000 10000; do
  run ladder-$n-after "$after" bench fanout --clients $n --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
done
free_run free-before "$before" bench fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
free_run free-after "$after" bench fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
run idle-19000-before "$before" bench idle --clients 19000 --hold 5 --server-cpus 0
run idle-19000-after "$after" bench idle --clients 19000 --hold 5 --server-cpus 0
