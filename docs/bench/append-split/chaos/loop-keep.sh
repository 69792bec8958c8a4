#!/bin/bash
# loop.sh's loop, keeping each failing run's output in OUTDIR/fail-N.txt and
# every run's seed line in OUTDIR/summaries.txt.
# Usage: loop-keep.sh IT_BINARY SECS OUTDIR
it=$1; secs=$2; out=$3; mkdir -p "$out"
yes > /dev/null & y1=$!; yes > /dev/null & y2=$!
f=0; n=0; end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
  o=$(timeout 150 "$it" chaos:: --nocapture 2>&1); n=$((n + 1))
  echo "$o" | grep -E "^chaos:" | head -1 >> "$out/summaries.txt"
  if ! echo "$o" | grep -q "test result: ok"; then
    f=$((f + 1)); echo "$o" > "$out/fail-$n.txt"; echo "FAIL run $n"
  fi
  echo "runs $n fails $f" > "$out/count.txt"
done
kill $y1 $y2; echo "fails $f/$n"
