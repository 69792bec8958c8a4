# Per thread name: CPU run time, run-queue wait and time slices between two
# snapshots of /proc/PID/task/*/schedstat (s0.txt, s1.txt, written by run.sh
# 15 s apart while the seed load runs). python3 summary.py s0.txt s1.txt
import collections, sys
def load(f):
    d = {}
    for l in open(f):
        tid, comm, run, wait, slices = l.split()
        d[tid] = (comm, int(run), int(wait), int(slices))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
agg = collections.defaultdict(lambda: [0, 0, 0, 0])
for tid, (comm, r, w, s) in b.items():
    r0, w0, s0 = a[tid][1:] if tid in a else (0, 0, 0)
    x = agg[comm]; x[0] += r - r0; x[1] += w - w0; x[2] += s - s0; x[3] += 1
for comm, (r, w, s, n) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    if r or w:
        print(f"{comm:22s} threads {n:2d} run {r/1e9:6.2f}s wait {w/1e9:6.2f}s slices {s}")
