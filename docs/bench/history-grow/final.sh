#!/bin/bash
# History A/B, alternating, three rounds: main before this work (bf8a8d6)
# against the final build (c2b7ee1: the window grows a step at a time,
# seqs hashed by a multiplication, one clone fewer). As run.sh: server on
# CPU 0, generator on CPU 1.
# Usage: final.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth :|hearth / ceiling' "$out/$label.txt" | tr '\n' ' ')"
}
for i in ${ROUNDS:-1 2 3}; do
  run history-before-$i "$before" history --duration 10 --server-cpus 0
  run history-after-$i "$after" history --duration 10 --server-cpus 0
done
