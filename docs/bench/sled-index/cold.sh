#!/bin/bash
# cold.sh BIN LABEL OUTDIR: 1,020,000 messages into a fresh store (the
# server started by hand, the bench posting to it), SIGTERM, then
# docs/bench/coldstart.py twice (three starts each) on that store; the size
# on disk is the last line of LABEL-fill.txt. BIN must be an absolute path.
bin=$1; label=$2; out=$(realpath -m "$3"); mkdir -p "$out"
cold=$(cd "$(dirname "$0")/.." && pwd)/coldstart.py
data=$(mktemp -d /tmp/cold-XXXX)
env HEARTH_SIGNUP_BURST=1000000 HEARTH_LOGIN_PER_MINUTE=1000000 HEARTH_SEND_PER_SEC=1000000 HEARTH_SEND_BURST=1000000 HEARTH_MAX_FRAMES_PER_SEC=1000000 HEARTH_HASH_CONCURRENCY=2 HEARTH_LOG_LEVEL=warn \
  $bin serve --listen 127.0.0.1:18200 --data $data > $out/$label-serve.log 2>&1 &
srv=$!
sleep 2
$bin bench fanout --url http://127.0.0.1:18200 --clients 32 --posters 32 --users 32 --rate 60000 --duration 17 --no-ceiling > $out/$label-fill.txt 2>&1
kill -TERM $srv; wait $srv
du -sh $data >> $out/$label-fill.txt
w=$(mktemp -d); mkdir -p $w/target/release; ln -s $bin $w/target/release/hearth
(cd $w && python3 "$cold" $data) > $out/$label-cold.txt 2>&1
(cd $w && python3 "$cold" $data) >> $out/$label-cold.txt 2>&1
cat $out/$label-cold.txt; grep -E "messages|verification" $out/$label-fill.txt; tail -1 $out/$label-fill.txt
rm -rf $data $w
