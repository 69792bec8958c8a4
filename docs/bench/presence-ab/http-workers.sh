#!/bin/bash
# HTTP history and post with both cores free (server, ceiling and generator share them):
# the default runtime of 040e64f (one thread on 2 CPUs; "workers-default") against two threads
# ("workers-2"), alternating. Since then the default is one thread per CPU again: on a later build
# pass --server-env HEARTH_WORKERS=1 for the first.
# Usage: http-workers.sh BIN OUT_DIR
bin=$1; out=$2; mkdir -p "$out"
for i in 1 2; do
  for kind in history post; do
    for w in default 2; do
      env=(); [ $w = 2 ] && env=(--server-env HEARTH_WORKERS=2)
      label=$kind-workers-$w-$i
      echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: BIN bench $kind --duration 10 ${env[*]}" >> "$out/runs.log"
      "$bin" bench $kind --duration 10 "${env[@]}" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
      echo "$label: $(grep -E 'req|ratio|/ ceiling|µs' "$out/$label.txt" | tr -s ' ' | tr '\n' '|')"
    done
  done
done
