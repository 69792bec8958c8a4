#!/bin/bash
# A cpu-clock profile (no call graphs) of the server for 8 s of the seed load.
# Usage: profile-seed.sh BINARY OUT_DIR; then perf report -i OUT_DIR/perf.data --no-children --sort sym
bin=$1; out=$2; mkdir -p $out
taskset -c 1 $bin bench fanout --clients 15000 --rate 117 --duration 22 --server-cpus 0 --rss-settle 0 --no-ceiling --quiet --json-file $out/r.json > $out/bench.txt 2>&1 &
b=$!
for i in $(seq 1 400); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
sleep 14
perf record -e cpu-clock -F 999 -p $pid -o $out/perf.data -- sleep 8 2>&1 | tail -1
wait $b
