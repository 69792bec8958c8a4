#!/bin/bash
# A/B of two server builds, alternating, on the shapes the change touches:
#  - many rooms, pinned, no ceiling, with every server thread's CPU ticks
#    (grouped by thread name; the last sample before the server exits);
#  - the seed load pinned with the ceiling (before and after, as every
#    change must); `bench post`.
# Server on CPU 0, generator on CPU 1.
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR [ROUNDS]
before=$1; after=$2; out=$3; rounds=${4:-3}; mkdir -p "$out"
log() { echo "$(date -u +%FT%TZ) $1 load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench $2" >> "$out/runs.log"; }
threads() {  # label bin args...: bench run while sampling the server's threads
  local label=$1 bin=$2; shift 2
  log "$label" "$*"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1 &
  local b=$! pid=""
  for i in $(seq 1 400); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
  : > "$out/$label.samples"
  while kill -0 "$pid" 2>/dev/null; do
    for t in /proc/$pid/task/*; do
      echo "${t##*/} $(tr ' ' _ < $t/comm 2>/dev/null) $(awk '{print $14+$15}' $t/stat 2>/dev/null)"
    done >> "$out/$label.samples"
    sleep 0.5
  done
  wait $b
  # Each thread's last (largest) count, summed per thread name.
  awk 'NF==3 {if ($3>m[$1]) m[$1]=$3; n[$1]=$2} END {for (t in m) a[n[t]]+=m[t]; for (k in a) print a[k], k}' \
    "$out/$label.samples" | sort -rn > "$out/$label.threads"
  rm "$out/$label.samples"
}
run() {  # label bin args...
  local label=$1 bin=$2; shift 2
  log "$label" "$*"
  taskset -c 1 "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
}
for r in $(seq 1 "$rounds"); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    threads rooms-threads-$side-$r "$bin" rooms --clients 15000 --room-size 50 --rate 35100 --duration 10 --server-cpus 0 --no-ceiling --quiet
  done
done
for r in 1 2; do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    run seed-$side-$r "$bin" fanout --clients 15000 --rate 117 --duration 20 --server-cpus 0 --rss-settle 0
    run post-$side-$r "$bin" post --duration 10 --server-cpus 0
  done
done
