#!/bin/bash
# Per-thread CPU time and run-queue wait of the server during one `bench
# rooms` run (server on CPU 0, generator on CPU 1, no ceiling): each
# thread's /proc schedstat (ns on CPU, ns waiting for it) read 3 s into
# the sends and again 5 s later, summed by thread name.
# Usage: threads.sh BIN OUT_PREFIX [RATE]
bin=$1; out=$2; rate=${3:-35100}
taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate "$rate" --duration 12 \
  --server-cpus 0 --no-ceiling --json-file "$out.json" > "$out.txt" 2>&1 &
b=$!
until grep -q sent "$out.txt"; do sleep 0.3; done
pid=$(pgrep -P $b | xargs -r ps -o pid=,args= -p | grep serve | awk '{print $1}' | head -1)
snap() { for t in /proc/$pid/task/*; do echo "$(cat $t/comm 2>/dev/null | tr ' ' '_') $(cat $t/schedstat 2>/dev/null)"; done; }
sleep 3; snap > "$out.a"; sleep 5; snap > "$out.b"
wait $b
python3 - "$out.a" "$out.b" >> "$out.txt" <<'PY'
import sys, collections
def load(p):
    d = collections.defaultdict(lambda: [0, 0, 0])
    for line in open(p):
        f = line.split()
        if len(f) == 4:
            d[f[0]][0] += int(f[1]); d[f[0]][1] += int(f[2]); d[f[0]][2] += int(f[3])
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
print("per thread name over 5 s: CPU s, run-queue wait s, timeslices")
for k in sorted(b, key=lambda k: -(b[k][0] - a.get(k, [0, 0, 0])[0])):
    o = a.get(k, [0, 0, 0])
    cpu, wait, n = (b[k][i] - o[i] for i in range(3))
    if cpu or wait:
        print(f"  {k:20s} {cpu/1e9:7.3f} {wait/1e9:7.3f} {n:8d}")
PY
rm -f "$out.a" "$out.b"
tail -12 "$out.txt"
