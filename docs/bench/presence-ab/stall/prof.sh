#!/bin/bash
# perf record (cpu-clock, 1999 Hz, no call graph) of the server through a 10,000-client pinned run.
# usage: prof.sh BIN OUT (BIN: a hearth release build, OUT: a scratch directory)
bin=$1; out=$2; mkdir -p $out; rm -rf $out/data
env HEARTH_SIGNUP_BURST=1000000 HEARTH_LOGIN_PER_MINUTE=1000000 HEARTH_SEND_PER_SEC=1000000 HEARTH_SEND_BURST=1000000 HEARTH_MAX_FRAMES_PER_SEC=1000000 HEARTH_HASH_CONCURRENCY=2 HEARTH_MAX_CONNECTIONS=19900 HEARTH_MAX_CONNECTIONS_PER_IP=19900 HEARTH_LOG_LEVEL=warn $EXTRA \
  taskset -c 0 $bin serve --listen 127.0.0.1:18555 --data $out/data > $out/server.log 2>&1 &
srv=$!
sleep 2
perf record -e cpu-clock -F 1999 -p $srv -o $out/perf.data > $out/perf.log 2>&1 &
pp=$!
taskset -c 1 $bin bench fanout --url http://127.0.0.1:18555 --clients 10000 --rate 117 --duration 15 --no-ceiling --json-file $out/report.json > $out/bench.txt 2>&1
kill -INT $pp; sleep 2; kill $srv; wait
