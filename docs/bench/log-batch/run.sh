#!/bin/bash
# What the access log line costs at the default level, before and after
# batching: `bench history` and `bench post` with the server at
# HEARTH_LOG_LEVEL=info (the default of `hearth serve`; the bench itself
# runs its server at warn), alternating builds, server on CPU 0, generator
# on CPU 1. The server's stderr (its log) goes to a file, as it would in
# production; only its line count is kept.
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR [ROUNDS]
before=$1; after=$2; out=$3; rounds=${4:-3}; mkdir -p "$out"
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $*" >> "$out/runs.log"
  taskset -c 1 "$bin" bench "$@" --quiet --json-file "$out/$label.json" > "$out/$label.txt" 2> "$out/$label.log"
  echo "$label: server log lines $(grep -c 'HTTP request' "$out/$label.log")" >> "$out/log-lines.txt"
  rm "$out/$label.log"
}
for r in $(seq 1 "$rounds"); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    run history-info-$side-$r "$bin" history --duration 10 --server-cpus 0 --server-env HEARTH_LOG_LEVEL=info
  done
  run history-warn-before-$r "$before" history --duration 10 --server-cpus 0
done
for r in 1 2; do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    run post-info-$side-$r "$bin" post --duration 10 --server-cpus 0 --server-env HEARTH_LOG_LEVEL=info
  done
done
