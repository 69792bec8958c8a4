#!/bin/bash
# Which threads write sled's log, and in what sizes, over 2 s of `bench rooms`
# (35,100 msgs/s into 300 rooms of 50, no ceiling; server on CPU 0,
# generator on CPU 1): strace of the committer and the sled IO pool's
# threads, counted per thread kind and write size.
# Usage: writes.sh BIN OUT_FILE
bin=$1; out=$2; tmp=$(mktemp -d)
taskset -c 1 "$bin" bench rooms --clients 15000 --room-size 50 --rate 35100 \
  --duration 10 --server-cpus 0 --no-ceiling > "$tmp/run.txt" 2>&1 &
b=$!
for i in $(seq 1 200); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
for i in $(seq 1 120); do grep -q 'sent' "$tmp/run.txt" && break; sleep 0.5; done
sleep 2
io=$(grep -l 'sled-io' /proc/$pid/task/*/comm | cut -d/ -f5)
commit=$(grep -l 'hearth-commit' /proc/$pid/task/*/comm | cut -d/ -f5)
timeout 2 strace $(printf -- '-p %s ' $io $commit) -e trace=pwrite64 -o "$tmp/strace.txt" > /dev/null 2>&1
wait $b
{
  echo "pwrite64 over 2 s of the sends, by thread and size (count thread bytes):"
  grep 'pwrite64(' "$tmp/strace.txt" | awk -v c="$commit" '{
      t = ($1 == c) ? "committer" : "sled-io";
      match($0, /, [0-9]+, [0-9]+/);
      split(substr($0, RSTART + 2, RLENGTH - 2), a, ", ");
      n[t " " a[1]]++ }
    END { for (k in n) print n[k], k }' | sort -rn | head -12
  echo "calls per thread kind:"
  grep 'pwrite64(' "$tmp/strace.txt" | awk -v c="$commit" '{ n[($1 == c) ? "committer" : "sled-io"]++ } END { for (k in n) print n[k], k }'
  grep -E 'verification|p50 / p99|CPU µs per delivery' "$tmp/run.txt"
} > "$out"
rm -rf "$tmp"
cat "$out"
