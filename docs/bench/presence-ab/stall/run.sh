#!/bin/bash
# 10,000 clients pinned (server on CPU 0, generator on CPU 1) against a server started here; samples /metrics each second and every thread's CPU time every 0.25 s.
# usage: run.sh BIN OUT (BIN: a hearth release build, OUT: a scratch directory)
bin=$1; out=$2; mkdir -p $out; rm -rf $out/data
env HEARTH_SIGNUP_BURST=1000000 HEARTH_LOGIN_PER_MINUTE=1000000 HEARTH_SEND_PER_SEC=1000000 HEARTH_SEND_BURST=1000000 HEARTH_MAX_FRAMES_PER_SEC=1000000 HEARTH_HASH_CONCURRENCY=2 HEARTH_MAX_CONNECTIONS=19900 HEARTH_MAX_CONNECTIONS_PER_IP=19900 HEARTH_LOG_LEVEL=warn $EXTRA \
  taskset -c 0 $bin serve --listen 127.0.0.1:18555 --data $out/data > $out/server.log 2>&1 &
srv=$!
sleep 2
( while kill -0 $srv 2>/dev/null; do echo "T $(date +%s.%N)"; curl -s 127.0.0.1:18555/metrics | grep -E "commit_flush_duration|commit_batch_size_(sum|count)|ack_duration_seconds_(sum|count)|hearth_ack" ; sleep 1; done ) > $out/metrics.log 2>&1 &
mon=$!
( while kill -0 $srv 2>/dev/null; do echo "T $(date +%s.%N)"; for t in /proc/$srv/task/*; do echo "$(cat $t/comm) $(cut -d' ' -f14,15 $t/stat)"; done; sleep 0.25; done ) > $out/threads.log 2>&1 &
mon2=$!
taskset -c 1 $bin bench fanout --url http://127.0.0.1:18555 --clients 10000 --rate 117 --duration 15 --no-ceiling --json-file $out/report.json > $out/bench.txt 2>&1
kill $srv; sleep 1; kill $mon $mon2 2>/dev/null
