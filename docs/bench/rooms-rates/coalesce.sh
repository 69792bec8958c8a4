#!/bin/bash
# Many rooms pinned with the coalescing window off (0) and at its default
# (20 ms), alternating, two rounds, the ceiling in each invocation.
# Usage: coalesce.sh BIN OUT_DIR
bin=$1; out=$2; mkdir -p "$out"
. "$(dirname "$0")/../run-one.sh"
for r in 1 2; do for c in 0 20; do
run "rooms-c$c-$r" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --server-env HEARTH_COALESCE_MS=$c
done; done
