#!/usr/bin/env bash
# Counts what the server does per second under the seed load, from /proc:
# write calls and bytes (`/proc/PID/io`), user and system CPU
# (`/proc/PID/stat`), and frames per write from the bench's own report.
# With PERF=1 it also records a `perf` profile of the same window.
#
#   docs/bench/proc-sample.sh [BINARY] [WARM_UP_SECONDS] [WINDOW_SECONDS]
#
# Defaults: target/release/hearth, 12 s after start, a 10 s window. The
# server is pinned to CPU 0 and the generator to CPU 1, as in BENCHMARKS.md.
set -euo pipefail
bin=${1:-target/release/hearth}
warm=${2:-12}
window=${3:-10}
out=$(mktemp -d)

taskset -c 1 "$bin" bench fanout --clients 15000 --posters 4 --rate 117 \
  --duration $((warm + window + 5)) --server-cpus 0 --no-ceiling --quiet \
  --rss-settle 0 --json-file "$out/report.json" >"$out/bench.txt" 2>&1 &
bench=$!
sleep "$warm"
pid=$(pgrep -f -- "$(basename "$bin") serve" | head -1)

io() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/io"; }
cpu() { awk '{sub(/.*\) /, ""); print $12, $13}' "/proc/$pid/stat"; }

w0=$(io syscw); b0=$(io wchar); read -r u0 s0 < <(cpu)
if [ "${PERF:-0}" = 1 ]; then
  perf record -e cpu-clock -F 999 -g -p "$pid" -o "$out/perf.data" -- sleep "$window" 2>/dev/null
else
  sleep "$window"
fi
w1=$(io syscw); b1=$(io wchar); read -r u1 s1 < <(cpu)
wait "$bench" || true

python3 - "$out/report.json" "$window" "$((w1 - w0))" "$((b1 - b0))" \
  "$((u1 - u0))" "$((s1 - s0))" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
report, window, writes, written, user, system, tck = sys.argv[1:]
window, writes, written = float(window), int(writes), int(written)
user, system, tck = int(user) / int(tck), int(system) / int(tck), int(tck)
deliveries = json.load(open(report))["hearth"]["deliveries_per_sec"]
print(f"writes/s            {writes / window:,.0f}")
print(f"bytes written/s     {written / window / 1e6:,.1f} MB")
print(f"deliveries/s        {deliveries:,.0f} (whole run)")
print(f"frames per write    {deliveries / (writes / window):.1f}")
print(f"bytes per write     {written / writes:,.0f}")
print(f"CPU user / system   {user:.2f} s / {system:.2f} s "
      f"({100 * user / (user + system):.0f} % / {100 * system / (user + system):.0f} %)")
print(f"kernel µs per write {1e6 * system / writes:.1f}")
EOF
echo "bench output and report: $out"
