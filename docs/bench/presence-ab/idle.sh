#!/bin/bash
# Idle memory, alternating two builds: 19,000 connections held 5 s, server on CPU 0, generator on CPU 1.
# Usage: idle.sh BEFORE_BIN AFTER_BIN OUT_DIR PAIRS
before=$1; after=$2; out=$3; pairs=${4:-4}; mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    label=idle-19000-$side-$i
    echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench idle --clients 19000 --hold 5 --server-cpus 0" >> "$out/runs.log"
    taskset -c 1 "$bin" bench idle --clients 19000 --hold 5 --server-cpus 0 --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
    echo "$label: $(grep -E 'per connection' "$out/$label.txt" | tr '\n' ' ')"
  done
done
