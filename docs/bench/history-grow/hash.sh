#!/bin/bash
# History A/B, alternating, rounds 1 2 3 (or ROUNDS): BEFORE_BIN against
# AFTER_BIN. As run.sh: server on CPU 0, generator on CPU 1. Used for the
# grown window (747c8ed) against seqs hashed by a multiplication and one
# Arc clone fewer per message (279aaec), raw in hash/ (rounds 1-3, then
# ROUNDS="4 5 6"), and by final.sh.
# Usage: hash.sh BEFORE_BIN AFTER_BIN OUT_DIR
[ $# -eq 3 ] || { echo "usage: $0 BEFORE_BIN AFTER_BIN OUT_DIR" >&2; exit 2; }
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
