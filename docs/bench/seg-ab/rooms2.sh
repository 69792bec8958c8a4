#!/bin/bash
# Second and third pairs of the many-rooms run, after first this time.
# Usage: rooms2.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3
for i in 2 3; do
  for side in after before; do
    bin=$before; [ $side = after ] && bin=$after
    label=rooms-$side-$i
    echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0" >> "$out/runs.log"
    taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
    echo "$label: $(grep -E 'deliveries/s|CPU µs per delivery|hearth / ceiling' "$out/$label.txt" | tr -s ' ' | tr '\n' '|')"
  done
done
