#!/bin/bash
# Profiles the server of one `hearth bench` run: server on CPU 0, generator on
# CPU 1, no ceiling; after DELAY seconds, 4 s of `perf record` (dwarf call
# graphs, 299 Hz) of the server; writes the run report and perf reports by
# thread (comm.txt) and by symbol (sym.txt) to OUT.
# Used for prof-post-*-comm.txt (`prof.sh BIN OUT 6 post --duration 14`) and
# prof-rooms-* (`prof.sh BIN OUT 45 rooms --clients 15000 --room-size 50
# --rate 35100 --duration 10`; the committer files add `--comm hearth-commit
# --percentage relative`, children.txt `--children`).
# prof.sh BIN OUT DELAY bench-args...
bin=$1; out=$2; delay=$3; shift 3; mkdir -p $out
taskset -c 1 $bin bench "$@" --server-cpus 0 --no-ceiling --json-file $out/run.json > $out/run.txt 2>&1 &
bpid=$!
sleep $delay
spid=$(pgrep -f "$bin serve" | head -1)
[ -z "$spid" ] && spid=$(pgrep -P $bpid | head -1)
echo "server pid $spid"
perf record --call-graph dwarf,16384 -F 299 -e cpu-clock -p $spid -o $out/perf.data -- sleep 4 2>/dev/null >/dev/null
wait $bpid
perf report -i $out/perf.data --no-children --sort comm -g none --stdio 2>/dev/null | grep -v "^#" | grep -v "^$" | head -15 > $out/comm.txt
perf report -i $out/perf.data --no-children --sort sym -g none --stdio 2>/dev/null | grep -v "^#" | grep -v "^$" | head -60 > $out/sym.txt
