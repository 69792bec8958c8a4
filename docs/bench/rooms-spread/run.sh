#!/bin/bash
# Many rooms (15,000 clients in 300 rooms of 50, 35,100 msgs/s, 10 s) with
# the raw ceiling in each invocation, in three placements: server pinned to
# CPU 0 with the generator on CPU 1; the server's threads spread over both
# CPUs (`--server-cpus 0,1`) with the generator on CPU 1; and nothing pinned.
# Usage: run.sh BIN OUT_DIR ROUNDS
bin=$1; out=$2; rounds=${3:-1}; mkdir -p "$out"
args="rooms --clients 15000 --room-size 50 --rate 35100 --duration 10"
run() {  # label pin server-cpus-args
  local label=$1 pin=$2; shift 2
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: $pin BIN bench $args $*" >> "$out/runs.log"
  $pin "$bin" bench $args "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth / ceiling|verification' "$out/$label.txt" | tr '\n' ' ')"
}
for r in $(seq 1 "$rounds"); do
  run pinned-$r "taskset -c 1" --server-cpus 0
  run spread-$r "taskset -c 1" --server-cpus 0,1
  run free-$r ""
done
