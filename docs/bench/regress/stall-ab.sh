#!/bin/bash
# The stalled-reader run (1 % of the seed load stops reading 3 s in, for
# 25 s, then resumes; a baseline without stalls in the same invocation),
# two builds alternating. Server on CPU 0, generator on CPU 1.
# Usage: stall-ab.sh BEFORE_BIN AFTER_BIN OUT_DIR [ROUNDS]
before=$1; after=$2; out=$3; rounds=${4:-2}; mkdir -p "$out"
for i in $(seq 1 "$rounds"); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    label=stall-$side-$i
    echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/runs.log"
    taskset -c 1 "$bin" bench fanout --clients 15000 --rate 117 --duration 30 --stall-percent 1 \
      --stall-after 3 --stall-for 25 --server-cpus 0 --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
    echo "$label: $(grep -E 'with stalled readers|stalled readers:|verification' "$out/$label.txt" | tr '\n' ' ')"
  done
done
