#!/bin/bash
# The chaos test looped on a loaded machine, as the split's gap was looked
# for: two busy loops (`yes`) beside it, runs until SECS have passed.
# Usage: [HEARTH_CHAOS_MESSAGES=N] loop.sh IT_BINARY SECS [OUT_DIR]
# IT_BINARY is the integration-test binary `cargo test --test it --no-run`
# builds (target/debug/deps/it-*), of the build to try. With OUT_DIR, each
# failing run's output is kept in OUT_DIR/fail-N.txt and every run's seed
# line in OUT_DIR/summaries.txt.
it=$1; secs=$2; out=$3
[ -n "$out" ] && mkdir -p "$out"
yes > /dev/null & y1=$!; yes > /dev/null & y2=$!
f=0; n=0; end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
  o=$(timeout 150 "$it" chaos:: --nocapture 2>&1); n=$((n + 1))
  [ -n "$out" ] && echo "$o" | grep -E "^chaos:" | head -1 >> "$out/summaries.txt"
  if ! echo "$o" | grep -q "test result: ok"; then
    f=$((f + 1)); echo "$o" | grep -E "seed|gap" | head -2
    [ -n "$out" ] && echo "$o" > "$out/fail-$n.txt"
  fi
done
kill $y1 $y2; echo "fails $f/$n"
