#!/bin/bash
# A/B of two release builds, alternating: HTTP history (2,000 messages;
# half the pages the newest, half before a seq spread over all of them;
# the raw HTTP ceiling answers the same bytes in the same invocation),
# then the seed load pinned (the fan-out must not slow; the raw ceiling
# in the same invocation). Server on CPU 0, generator on CPU 1, nothing
# else running. Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR [PAIRS]
set -u
before=$1; after=$2; out=$3; pairs=${4:-3}; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth / ceiling|verification' "$out/$label.txt" | tr '\n' ' ')"
}
for i in $(seq "$pairs"); do
  run history-before-$i "$before" history --duration 10 --server-cpus 0
  run history-after-$i "$after" history --duration 10 --server-cpus 0
done
for i in 1 2; do
  run seed-before-$i "$before" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
  run seed-after-$i "$after" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
done
