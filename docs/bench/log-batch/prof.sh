#!/bin/bash
# Where the access log's cost goes: `bench history` (no ceiling) with the
# server at HEARTH_LOG_LEVEL=info, its log to a file; a dwarf call-graph
# profile of the whole server for 4 s from 4 s in.
# Usage: prof.sh BIN OUT_DIR
bin=$1; out=$2; mkdir -p "$out"
echo "$(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench history --duration 12 --server-cpus 0 --no-ceiling --server-env HEARTH_LOG_LEVEL=info" >> "$out/runs.log"
taskset -c 1 "$bin" bench history --duration 12 --server-cpus 0 --no-ceiling --quiet --server-env HEARTH_LOG_LEVEL=info --json-file "$out/r.json" > "$out/bench.txt" 2> "$out/server.log" &
b=$!
for i in $(seq 1 400); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
# The load has begun once request lines arrive.
while [ "$(grep -c 'HTTP request' "$out/server.log")" -lt 1000 ]; do sleep 0.2; done
sleep 4
perf record --call-graph dwarf,16384 -F 299 -e cpu-clock -p $pid -o "$out/perf.data" -- sleep 4 > /dev/null 2>&1
wait $b
echo "request lines in the log: $(grep -c 'HTTP request' "$out/server.log")" > "$out/lines.txt"
rm "$out/server.log"
