#!/bin/bash
# Call-graph profile of the committer thread during the seed load (pinned).
bin=$1; out=$2; mkdir -p $out
taskset -c 1 $bin bench fanout --clients 15000 --rate 117 --duration 22 --server-cpus 0 --rss-settle 0 --no-ceiling --quiet --json-file $out/r.json > $out/bench.txt 2>&1 &
b=$!
for i in $(seq 1 400); do pid=$(pgrep -P $b -f serve | head -1); [ -n "$pid" ] && break; sleep 0.1; done
sleep 14
tid=$(grep -l hearth-commit /proc/$pid/task/*/comm | head -1 | cut -d/ -f5)
for t in /proc/$pid/task/*; do echo "$(cat $t/comm) $(awk '{print $14+$15}' $t/stat)"; done | sort | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' > $out/threads0.txt
perf record -g -e cpu-clock -F 1999 -t $tid -o $out/perf.data -- sleep 8 2>&1 | tail -1
for t in /proc/$pid/task/*; do echo "$(cat $t/comm) $(awk '{print $14+$15}' $t/stat)"; done | sort | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' > $out/threads1.txt
wait $b
