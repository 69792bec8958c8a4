#!/bin/bash
# Context switches per second of the server threads during `bench post` (3 s of steady load).
# Usage: ctxswitch-post.sh BINARY LABEL. Run alternately for two builds.
bin=$1
taskset -c 1 $bin bench post --duration 10 --server-cpus 0 --no-ceiling --quiet > /tmp/ctx-$2.txt 2>&1 &
b=$!
sleep 1
for i in $(seq 1 100); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.2; done
sleep 6
cs() { cat /proc/$pid/task/*/status 2>/dev/null | awk '/voluntary_ctxt_switches/ {s+=$2} END {print s}'; }
c0=$(cs); sleep 3; c1=$(cs)
wait $b
echo "$2 ctx switches/s: $(( (c1 - c0) / 3 ))  $(grep -o '[0-9]* req/s' /tmp/ctx-$2.txt)"
