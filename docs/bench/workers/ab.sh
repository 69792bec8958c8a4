#!/bin/bash
# Unpinned A/B of two builds at the seed load and in many rooms, with the
# ceiling in each invocation, alternating builds each round; the default
# runtime threads (one per CPU: two here) unless WORKERS is set.
# Usage: ab.sh BEFORE AFTER OUT_DIR   (ROUNDS="1 2 3", ONLY="seed rooms")
before=$1; after=$2; out=$3; mkdir -p "$out"
. "$(dirname "$0")/../run-one.sh"
env=()
[ -n "$WORKERS" ] && env=(--server-env "HEARTH_WORKERS=$WORKERS")
for r in ${ROUNDS:-1 2 3}; do
  for side in before after; do
    bin=${!side}
    for what in ${ONLY:-seed rooms}; do
      case $what in
        seed) run "$what-$side-$r" free fanout --clients 15000 --rate 117 --duration 20 --threads 1 --rss-settle 0 "${env[@]}" ;;
        rooms) run "$what-$side-$r" free rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 "${env[@]}" ;;
      esac
    done
  done
done
