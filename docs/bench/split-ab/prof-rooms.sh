#!/bin/bash
# The committer's CPU over a whole `bench rooms` run (pinned, no ceiling):
# its thread's ticks sampled every 0.5 s (the last sample before the server
# exits), divided by the messages stored; and a call-graph profile of the
# committer thread for 6 s in the middle of the load (CG="--call-graph dwarf -F 499"
# for call chains through code built without frame pointers).
# Usage: [EXTRA="--server-env K=V"] prof-rooms.sh BIN OUT_DIR
bin=$1; out=$2; mkdir -p "$out"
echo "$(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --no-ceiling $EXTRA" >> "$out/runs.log"
taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --no-ceiling --quiet $EXTRA --json-file "$out/r.json" > "$out/bench.txt" 2>&1 &
b=$!
for i in $(seq 1 400); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
for i in $(seq 1 400); do
  tid=$(grep -l hearth-commit /proc/$pid/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
  [ -n "$tid" ] && break; sleep 0.1
done
ticks=0; started=0
while kill -0 "$pid" 2>/dev/null; do
  t=$(awk '{print $14+$15}' /proc/$pid/task/$tid/stat 2>/dev/null) && [ -n "$t" ] && ticks=$t
  # The load has begun once the committer works; profile from 3 s in.
  if [ $started = 0 ] && [ "$ticks" -gt 50 ]; then
    started=1
    (sleep 3; perf record ${CG:--g -F 1999} -e cpu-clock -t $tid -o "$out/perf.data" -- sleep 6 > /dev/null 2>&1) &
  fi
  sleep 0.5
done
wait $b
echo "committer_ticks $ticks" > "$out/committer.txt"
