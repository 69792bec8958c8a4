#!/bin/bash
# upgrade.sh OLD_BIN NEW_BIN OUT: a store of schema 1 written by OLD_BIN
# (messages from 32 posters into one room for 8 s, then a clean stop),
# opened by NEW_BIN (the migration to schema 2 logs how many head keys it
# removed), 8 s more posts through NEW_BIN, a clean stop, `hearth verify`
# and the first history page. Absolute paths for the binaries.
old=$1; new=$2; out=$(realpath -m "$3"); mkdir -p "$out"
data=$(mktemp -d /tmp/upgrade-XXXX)
limits="HEARTH_SIGNUP_BURST=1000000 HEARTH_LOGIN_PER_MINUTE=1000000 HEARTH_SEND_PER_SEC=1000000 HEARTH_SEND_BURST=1000000 HEARTH_MAX_FRAMES_PER_SEC=1000000 HEARTH_HASH_CONCURRENCY=2 HEARTH_LOG_LEVEL=info"
fill() {  # bin label
  env $limits $1 serve --listen 127.0.0.1:18300 --data $data > $out/$2-serve.log 2>&1 &
  local srv=$!
  sleep 2
  $1 bench fanout --url http://127.0.0.1:18300 --clients 32 --posters 32 --users 32 --rate 60000 --duration 8 --no-ceiling > $out/$2-fill.txt 2>&1
  kill -TERM $srv; wait $srv
  grep -E "sent|verification" $out/$2-fill.txt | head -3
}
fill $old old
fill $new new
grep -i "schema" $out/new-serve.log
$new verify --data $data > $out/verify.txt 2>&1; echo "verify exit $?" >> $out/verify.txt
cat $out/verify.txt
rm -rf $data
