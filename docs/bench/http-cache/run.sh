#!/bin/bash
# Alternating before/after runs of `bench history` (2000 messages, and 200
# so every page is in the window) and `bench post`, server on CPU 0,
# generator on CPU 1. BEFORE and AFTER are release binaries copied aside.
# Usage: run.sh BEFORE AFTER ROUNDS
set -u
BEFORE=$1; AFTER=$2; ROUNDS=${3:-2}
cd "$(dirname "$0")"
run() { # side n scenario args...
    local side=$1 n=$2 name=$3; shift 3
    local bin=$BEFORE; [ "$side" = after ] && bin=$AFTER
    echo "$name-$side-$n start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs.log
    taskset -c 1 "$bin" bench "$@" --server-cpus 0 --json-file "$name-$side-$n.json" > "$name-$side-$n.txt" 2>/dev/null
    echo "$name-$side-$n end   $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs.log
}
for n in $(seq 1 "$ROUNDS"); do
    for side in before after; do run $side $n history history --clients 16 --duration 10; done
done
for n in $(seq 1 "$ROUNDS"); do
    for side in before after; do run $side $n history-prefill200 history --clients 16 --duration 10 --prefill 200; done
done
for n in $(seq 1 "$ROUNDS"); do
    for side in before after; do run $side $n post post --clients 16 --duration 10; done
done
