#!/bin/bash
# Write system calls per second of the server and of the raw ceiling in one
# `bench rooms` invocation (server and ceiling on CPU 0, generator on CPU 1):
# /proc/PID/io `syscw` read 2 s into each one's deliveries and 5 s later.
# Usage: writes.sh BIN OUT_PREFIX  (report in OUT_PREFIX.{json,txt}, counts
# appended to OUT_PREFIX.txt)
bin=$1; out=$2
taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 \
  --server-cpus 0 --json-file "$out.json" > "$out.txt" 2>&1 &
b=$!
for who in serve ceiling; do
  pid=""
  while [ -z "$pid" ]; do
    pid=$(pgrep -P $b | xargs -r ps -o pid=,args= -p | grep "$who" | awk '{print $1}' | head -1)
    sleep 0.2
  done
  label=${who/serve/hearth}
  until grep -q "^$label:.*delivered" "$out.txt"; do sleep 0.2; kill -0 "$pid" 2>/dev/null || break; done
  sleep 2; a=$(awk '/syscw/{print $2}' /proc/$pid/io)
  sleep 5; c=$(awk '/syscw/{print $2}' /proc/$pid/io)
  echo "$label writes/s $(( (c - a) / 5 ))" >> "$out.txt.counts"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.3; done
done
wait $b
cat "$out.txt.counts" >> "$out.txt"; rm "$out.txt.counts"
grep -E "writes/s|hearth / ceiling|verification" "$out.txt"
