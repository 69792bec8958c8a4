#!/bin/bash
# One build on this machine, every fan-out goal of issue 12 once: 5,000 and
# 10,000 clients pinned (server on CPU 0, generator on CPU 1), many rooms
# pinned, then the seed load with both cores free, with the default runtime
# threads and with one (HEARTH_WORKERS=1); the ceiling in each invocation.
# Usage: matrix.sh BIN OUT_DIR
bin=$1; out=$2; mkdir -p "$out"
. "$(dirname "$0")/../run-one.sh"
run ladder-5000 fanout --clients 5000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
run ladder-10000 fanout --clients 10000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
run rooms rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0
run free-default free fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0
run free-workers1 free fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0 --server-env HEARTH_WORKERS=1
