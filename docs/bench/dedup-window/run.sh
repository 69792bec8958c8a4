#!/bin/bash
# A/B of two release builds, alternating, server on CPU 0 and generator on
# CPU 1: dedup from the room's newest events (after) against a dedup key
# written per message (before).
# - committer-*: the committer thread's CPU ticks (utime+stime, 1/100 s)
#   over a whole `bench rooms` run without the ceiling (351,000 messages);
# - post-*, rooms-*, seed-*: the benches with their ceilings.
# Usage: [ONLY="committer rooms"] [ROUNDS="4 5"] run.sh BEFORE_BIN AFTER_BIN OUT_DIR
# (ONLY picks phases, ROUNDS numbers the rounds; by default all phases,
# rounds 1-3 of committer and post, 1-2 of rooms and seed)
before=$1; after=$2; out=$3; mkdir -p "$out"
rooms="rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0"
log() { echo "$(date -u +%FT%TZ) $1 load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $2" >> "$out/runs.log"; }
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  log "$label" "$*"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: $(grep -E 'hearth / ceiling|verification|req/s|posts' "$out/$label.txt" | head -4 | tr '\n' ' ')"
}
committer() {  # label bin
  local label=$1 bin=$2
  log "$label" "$rooms --no-ceiling"
  taskset -c 1 "$bin" bench $rooms --no-ceiling --json-file "$out/$label.json" > "$out/$label.txt" 2>&1 &
  local b=$! pid tid t i ticks=0
  for i in $(seq 1 400); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
  for i in $(seq 1 400); do
    tid=$(grep -l hearth-commit /proc/$pid/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
    [ -n "$tid" ] && break; sleep 0.1
  done
  while kill -0 "$pid" 2>/dev/null; do
    t=$(awk '{print $14+$15}' /proc/$pid/task/$tid/stat 2>/dev/null) && [ -n "$t" ] && ticks=$t
    sleep 0.5
  done
  wait $b
  echo "committer_ticks $ticks" >> "$out/$label.txt"
  echo "$label: committer_ticks $ticks $(grep -E 'verification' "$out/$label.txt")"
}
only=${ONLY:-committer post rooms seed}
want() { [[ " $only " == *" $1 "* ]]; }
want committer && for i in ${ROUNDS:-1 2 3}; do
  committer committer-before-$i "$before"
  committer committer-after-$i "$after"
done
want post && for i in ${ROUNDS:-1 2 3}; do
  run post-before-$i "$before" post --duration 10 --server-cpus 0
  run post-after-$i "$after" post --duration 10 --server-cpus 0
done
want rooms && for i in ${ROUNDS:-1 2}; do
  run rooms-before-$i "$before" $rooms
  run rooms-after-$i "$after" $rooms
done
want seed && for i in ${ROUNDS:-1 2}; do
  run seed-before-$i "$before" fanout --clients 15000 --posters 4 --rate 117 --duration 15 --server-cpus 0 --rss-settle 0
  run seed-after-$i "$after" fanout --clients 15000 --posters 4 --rate 117 --duration 15 --server-cpus 0 --rss-settle 0
done
