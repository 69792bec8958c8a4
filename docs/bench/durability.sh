#!/bin/sh
# Durability "flush" against "strict", alternating the two settings back to
# back, ROUNDS times (default 2). Run from the repository after
# `cargo build --release`:
#
#   docs/bench/durability.sh fanout [RATE ...]   (default: 5000 20000 60000)
#   docs/bench/durability.sh post
#
# `fanout` is the durable-posts load (32 clients, all posting, one room) at
# each offered rate; `post` is 16 HTTP clients posting as fast as they are
# acknowledged, which finds the commit path's own limit. Each run writes
# docs/bench/durability-MODE-….json (the bench's report) and, for `fanout`,
# .metrics (the server's commit_* metrics, scraped every half second while
# it runs; the last scrape is kept). The server child inherits
# HEARTH_DURABILITY from this script. A run that fails verification keeps
# its report and the script goes on.
set -eu
what=${1:-fanout}
[ $# -gt 0 ] && shift
rates=${*:-5000 20000 60000}
rounds=${ROUNDS:-2}
out=docs/bench

# fanout_run MODE RATE NAME
fanout_run() {
    HEARTH_DURABILITY=$1 taskset -c 1 target/release/hearth bench fanout \
        --clients 32 --posters 32 --users 32 --rate "$2" --duration 10 \
        --server-cpus 0 --no-ceiling --rss-settle 0 \
        --json-file "$3.json" >/dev/null 2>"$3.log" &
    bench=$!
    addr=
    while kill -0 "$bench" 2>/dev/null; do
        if [ -z "$addr" ]; then
            # The bench's first line on stderr names the server's address.
            addr=$(sed -n 's/.* on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$3.log" | head -n 1)
        fi
        if [ -n "$addr" ] && curl -sf "http://$addr/metrics" -o "$3.metrics.tmp"; then
            grep '^hearth_commit_' "$3.metrics.tmp" >"$3.metrics" || true
        fi
        sleep 0.5
    done
    wait "$bench" || echo "$3: verification failed, see $3.json" >&2
    rm -f "$3.metrics.tmp" "$3.log"
}

# post_run MODE NAME
post_run() {
    HEARTH_DURABILITY=$1 taskset -c 1 target/release/hearth bench post \
        --clients 16 --duration 10 --server-cpus 0 --quiet \
        --json-file "$2.json" >/dev/null
}

for rate in $rates; do
    round=1
    while [ "$round" -le "$rounds" ]; do
        for mode in flush strict; do
            label=$what; [ "$what" = fanout ] && label="fanout at $rate msgs/s"
            echo "$label, $mode, round $round; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
            case $what in
            fanout) fanout_run "$mode" "$rate" "$out/durability-$mode-$rate-$round" ;;
            post) post_run "$mode" "$out/durability-post-$mode-$round" ;;
            *) echo "usage: $0 fanout [RATE ...] | post" >&2; exit 2 ;;
            esac
        done
        round=$((round + 1))
    done
    # `post` has no rate: one set of rounds.
    [ "$what" = post ] && break
done
