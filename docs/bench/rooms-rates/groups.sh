#!/bin/bash
# Group commit sizes during one `bench rooms` run (server on CPU 0,
# generator on CPU 1, no ceiling): the server's /metrics read 3 s into the
# sends and 5 s later; groups, messages and apply-and-flush time between.
# Usage: groups.sh BIN OUT_PREFIX [RATE]
bin=$1; out=$2; rate=${3:-35100}
taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate "$rate" --duration 12 \
  --server-cpus 0 --no-ceiling --json-file "$out.json" > "$out.txt" 2>&1 &
b=$!
until grep -q sent "$out.txt"; do sleep 0.3; done
addr=$(grep -o "on 127.0.0.1:[0-9]*" "$out.txt" | head -1 | cut -c4-)
pick='^hearth_(commit_groups|messages_stored)_total |^hearth_commit_flush_duration_seconds_sum '
sleep 3; curl -s "http://$addr/metrics" | grep -E "$pick" > "$out.a"
sleep 5; curl -s "http://$addr/metrics" | grep -E "$pick" > "$out.b"
wait $b
{ echo "metrics 3 s into the sends:"; cat "$out.a"; echo "and 5 s later:"; cat "$out.b"; } >> "$out.txt"
python3 - "$out.a" "$out.b" >> "$out.txt" <<'PY'
import sys
a, b = ({l.split()[0]: float(l.split()[1]) for l in open(p)} for p in sys.argv[1:])
d = {k: b[k] - a[k] for k in b}
g, m = d["hearth_commit_groups_total"], d["hearth_messages_stored_total"]
f = d["hearth_commit_flush_duration_seconds_sum"]
print(f"over 5 s: {g:.0f} groups, {m:.0f} messages, {m / g:.0f} per group, {1000 * f / g:.2f} ms of apply and flush each")
PY
rm -f "$out.a" "$out.b"
tail -8 "$out.txt"
