#!/bin/bash
# The gather experiment: a release build of 328ff8f with gather.patch applied
# (the committer sleeps XGATHER_US before taking a group whenever the last
# one held XGATHER_FROM = 32 or more), pinned many rooms with its ceiling,
# each wait in turn, two rounds.
# Usage: run.sh BIN OUT T1 T2 ...   (this directory: run.sh BIN OUT 0 5000 15000)
bin=$1; out=$2; shift 2; mkdir -p "$out"
rooms="rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0"
for r in 1 2; do
  for T in "$@"; do
    XGATHER_US=$T taskset -c 1 "$bin" bench $rooms --json-file "$out/rooms-$T-$r.json" > "$out/rooms-$T-$r.txt" 2>&1
    echo "T=$T r=$r $(grep -E 'hearth / ceiling|server CPU s|latency p50' "$out/rooms-$T-$r.txt" | tr '\n' ' ')"
  done
done
