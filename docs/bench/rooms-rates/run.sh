#!/bin/bash
# Many rooms (15,000 clients in 300 rooms of 50) pinned (server on CPU 0,
# generator on CPU 1) at several message rates, each with the ceiling in
# the same invocation: where hearth stops keeping up, against where the
# ceiling does.
# Usage: run.sh BIN OUT_DIR   (RATES="20000 25000 30000 35100", ROUNDS="1 2")
bin=$1; out=$2; mkdir -p "$out"
. "$(dirname "$0")/../run-one.sh"
for r in ${ROUNDS:-1 2}; do
  for rate in ${RATES:-20000 25000 30000 35100}; do
    run "rooms-$rate-$r" rooms --clients 15000 --room-size 50 --rate "$rate" --duration 10 --server-cpus 0
  done
done
