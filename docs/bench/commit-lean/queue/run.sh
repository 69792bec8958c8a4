#!/bin/bash
# Many rooms past saturation: does a shorter committer queue (4 × group_commit_max
# sends wait for the committer; a full queue stops the sender's socket being
# read) help delivery? One build, alternating the setting; server on CPU 0,
# generator on CPU 1, the ceiling in each invocation.
# Usage: run.sh BIN OUT_DIR [ROUNDS]
bin=$1; out=$2; rounds=${3:-2}; mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for g in 1024 128 32; do
    label=rooms-group$g-$r
    echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --server-env HEARTH_GROUP_COMMIT_MAX=$g" >> "$out/runs.log"
    taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --server-env HEARTH_GROUP_COMMIT_MAX=$g --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  done
done
