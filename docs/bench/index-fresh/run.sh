#!/bin/bash
# A/B of two release builds, alternating: HTTP posts (16 keep-alive
# clients, each post durable and indexed for search before its answer;
# the raw HTTP ceiling answers the same bytes in the same invocation),
# then the seed load pinned. Server on CPU 0, generator on CPU 1, nothing
# else running. Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR [PAIRS]
set -u
before=$1; after=$2; out=$3; pairs=${4:-3}; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth :|hearth / ceiling|verification' "$out/$label.txt" | tr '\n' ' ')"
}
for i in $(seq "$pairs"); do
  run post-before-$i "$before" post --duration 10 --server-cpus 0
  run post-after-$i "$after" post --duration 10 --server-cpus 0
done
run seed-before-1 "$before" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
run seed-after-1 "$after" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
