#!/bin/bash
# A cpu-clock profile with dwarf call graphs of the server during bench rooms (15,000 clients, 300 rooms of 50).
# Summarised per thread and function with perf script.
# usage: perfrooms.sh BIN OUTDIR [extra bench args]
bin=$1; out=$2; shift 2; mkdir -p $out
taskset -c 1 $bin bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 20 --server-cpus 0 --no-ceiling "$@" --json-file $out/report.json > $out/bench.txt 2>&1 &
b=$!
for i in $(seq 1 240); do grep -q 'sent' $out/bench.txt && break; sleep 0.5; done
pid=$(pgrep -P $b | head -1)
ps -o pid,comm,args -p $pid | cut -c1-100
sleep 3
perf record -e cpu-clock -F 299 --call-graph dwarf,16384 -p $pid -o $out/perf.data -- sleep 5 2>&1 | tail -2
wait $b
