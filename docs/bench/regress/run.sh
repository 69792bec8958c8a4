#!/bin/bash
# Issue 12's "no regressions" re-runs, each scenario on the build from before
# the fan-out work and on the final one, alternating: the crash loop, a
# stalled-reader run (1 % of the seed load stops reading for 25 s, against a
# baseline in the same invocation) and a login storm (200 attempts/s during
# the seed load, against a baseline in the same invocation). Server on CPU 0,
# generator on CPU 1 (the crash loop: unpinned, as documented).
# Usage: run.sh BEFORE_BIN AFTER_BIN OUT_DIR
before=$1; after=$2; out=$3; mkdir -p "$out"
run() {  # label bin [free] args...
  local label=$1 bin=$2; shift 2
  local pin="taskset -c 1"
  if [ "$1" = free ]; then pin=""; shift; fi
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: $pin BIN bench $*" >> "$out/runs.log"
  $pin "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: exit $? $(grep -E 'verification|lost' "$out/$label.txt" | head -3 | tr '\n' ' ')"
}
for side in before after; do
  bin=$before; [ $side = after ] && bin=$after
  run crash-100-$side "$bin" free crash --cycles 100 --quiet
done
for side in before after; do
  bin=$before; [ $side = after ] && bin=$after
  run stall-$side "$bin" fanout --clients 15000 --rate 117 --duration 30 --stall-percent 1 --stall-after 3 --stall-for 25 --server-cpus 0
done
for side in before after; do
  bin=$before; [ $side = after ] && bin=$after
  run login-$side "$bin" login --clients 15000 --rate 117 --duration 20 --login-rate 200 --server-cpus 0
done
