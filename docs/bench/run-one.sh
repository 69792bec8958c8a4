# Sourced by the bench scripts beside it (page-cache/matrix.sh,
# dedup-window/regress.sh), which set $bin and $out first.
# run LABEL [free] BENCH-ARGS... runs `$bin bench BENCH-ARGS` with the
# generator on CPU 1 (after "free": unpinned), its report in
# $out/LABEL.json and $out/LABEL.txt, the time, load average and command in
# $out/runs.log, and prints its exit status and verdict lines.
run() {
  local label=$1; shift
  local pin="taskset -c 1"
  if [ "$1" = free ]; then pin=""; shift; fi
  echo "$(date -u +%FT%TZ) $label load=$(cut -d' ' -f1-3 /proc/loadavg) cmd: $pin BIN bench $*" >> "$out/runs.log"
  $pin "$bin" bench "$@" --json-file "$out/$label.json" > "$out/$label.txt" 2>&1
  echo "$label: exit $? $(grep -E 'hearth / ceiling|/ baseline|login storm:|verification' "$out/$label.txt" | tr '\n' ' ')"
}
