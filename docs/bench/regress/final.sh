#!/bin/bash
# After the replay change: the stalled-reader run alternating the build
# before it and the final one, then the crash loop and the login storm on
# the final build. Usage: final.sh BEFORE_BIN FINAL_BIN OUT_DIR
before=$1; final=$2; out=$3; mkdir -p "$out"
"$(dirname "$0")/stall-ab.sh" "$before" "$final" "$out" 2
echo "$(date -u +%FT%TZ) crash-100-final load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: BIN bench crash --cycles 100 --quiet" >> "$out/runs.log"
"$final" bench crash --cycles 100 --quiet --json-file "$out/crash-100-final.json" > "$out/crash-100-final.txt" 2>&1
echo "crash-100-final: $(grep -E 'lost|verification' "$out/crash-100-final.txt" | tr '\n' ' ')"
echo "$(date -u +%FT%TZ) login-final load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: taskset -c 1 BIN bench login --clients 15000 --rate 117 --duration 20 --login-rate 200 --server-cpus 0" >> "$out/runs.log"
taskset -c 1 "$final" bench login --clients 15000 --rate 117 --duration 20 --login-rate 200 --server-cpus 0 --json-file "$out/login-final.json" > "$out/login-final.txt" 2>&1
echo "login-final: $(grep -E 'with login storm|login storm:|verification' "$out/login-final.txt" | tr '\n' ' ')"
