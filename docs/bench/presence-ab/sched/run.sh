#!/bin/bash
# Threads of the server during 15 s of the seed load, pinned to CPU 0 (generator on CPU 1); per-thread schedstat snapshots.
# usage: run.sh BIN OUT [CLIENTS]  (BIN: a hearth release build; OUT: a scratch directory); run on 7766da3: p99 175 ms
bin=$1; out=$2; clients=${3:-15000}; mkdir -p $out; rm -rf $out/data
env HEARTH_SIGNUP_BURST=1000000 HEARTH_LOGIN_PER_MINUTE=1000000 HEARTH_SEND_PER_SEC=1000000 HEARTH_SEND_BURST=1000000 HEARTH_MAX_FRAMES_PER_SEC=1000000 HEARTH_HASH_CONCURRENCY=2 HEARTH_MAX_CONNECTIONS=19900 HEARTH_MAX_CONNECTIONS_PER_IP=19900 HEARTH_LOG_LEVEL=warn $EXTRA \
  taskset -c 0 $bin serve --listen 127.0.0.1:18555 --data $out/data > $out/server.log 2>&1 &
srv=$!
sleep 2
snap() { for t in /proc/$srv/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(cat $t/schedstat)"; done; }
taskset -c 1 $bin bench fanout --url http://127.0.0.1:18555 --clients $clients --rate 117 --duration 20 --no-ceiling --json-file $out/report.json > $out/bench.txt 2>&1 &
b=$!
for i in $(seq 1 600); do grep -q "s  sent" $out/bench.txt && break; sleep 0.2; done
snap > $out/s0.txt; sleep 15; snap > $out/s1.txt
wait $b
kill $srv; wait
