#!/bin/bash
# The no-regression runs of issue 12 on one build, once each: the crash loop
# (kill -9 under WebSocket and REST posters, unacknowledged sends resent with
# their client_id after each restart: the dedup window rebuilt from the log),
# the login storm and stalled readers (server on CPU 0, generator on CPU 1).
# Usage: regress.sh BIN OUT_DIR
bin=$1; out=$2; mkdir -p "$out"
. "$(dirname "$0")/../run-one.sh"
run crash-100 free crash --cycles 100 --quiet
run login login --server-cpus 0
run stall fanout --clients 15000 --rate 117 --duration 30 --stall-percent 1 --stall-after 3 --stall-for 25 --server-cpus 0
