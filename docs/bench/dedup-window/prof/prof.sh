#!/bin/bash
# Profiles one `hearth bench` run of a build: server on CPU 0, generator on
# CPU 1, no ceiling; once the posts have started, perf records the whole of
# CPU 0 (`-p PID` gets no samples on these machines), and the reports are
# filtered by thread name (--comms).
# Usage: prof.sh BIN OUT rooms|rooms-dwarf|post
#   rooms:       by thread and symbol, 5 s at 499 Hz (prof-rooms-*-comm.txt,
#                prof-rooms-*-committer.txt: --comms hearth-commit
#                --percentage relative)
#   rooms-dwarf: call graphs, 3 s at 199 Hz, a run of its own
#                (prof-rooms-*-committer-children.txt: --children)
#   post:        by thread and symbol, 4 s at 499 Hz from 6 s in
# Reports: perf report -i DATA [--children|--no-children] --sort comm|dso,sym
#          -g none --stdio
bin=$1; out=$2; what=$3; mkdir -p "$out"
case $what in
  rooms*) args="rooms --clients 15000 --room-size 50 --rate 35100 --duration 12" ;;
  post) args="post --duration 14" ;;
esac
taskset -c 1 "$bin" bench $args --server-cpus 0 --no-ceiling --json-file "$out/$what.json" > "$out/$what.txt" 2>&1 &
b=$!
case $what in
  rooms)
    until grep -q sent "$out/$what.txt"; do sleep 0.3; done; sleep 3
    perf record -F 499 -e cpu-clock -C 0 -o "$out/$what.data" -- sleep 5 >/dev/null 2>&1 ;;
  rooms-dwarf)
    until grep -q sent "$out/$what.txt"; do sleep 0.3; done; sleep 3
    perf record -F 199 -e cpu-clock -C 0 --call-graph dwarf,16384 -o "$out/$what.data" -- sleep 3 >/dev/null 2>&1 ;;
  post)
    sleep 6
    perf record -F 499 -e cpu-clock -C 0 -o "$out/$what.data" -- sleep 4 >/dev/null 2>&1 ;;
esac
wait $b
