#!/bin/bash
# The chaos test looped on a loaded machine, as the split's gap was looked
# for: two busy loops (`yes`) beside it, runs until SECS have passed.
# Usage: [HEARTH_CHAOS_MESSAGES=N] loop.sh IT_BINARY SECS
# IT_BINARY is the integration-test binary `cargo test --test it --no-run`
# builds (target/debug/deps/it-*), of the build to try.
it=$1; secs=$2
yes > /dev/null & y1=$!; yes > /dev/null & y2=$!
f=0; n=0; end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
  out=$(timeout 150 "$it" chaos:: 2>&1); n=$((n + 1))
  if ! echo "$out" | grep -q "test result: ok"; then
    f=$((f + 1)); echo "$out" | grep -E "seed|gap" | head -2
  fi
done
kill $y1 $y2; echo "fails $f/$n"
