# Top symbols of the server per time window around the first group commit (posting starts):
# perf script -i perf.data -F comm,time,ip,sym > s.txt; python3 windows.py s.txt
import collections, re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r'\s*(.+?)\s+(\d+\.\d+):\s+\S+\s+(.*)', line)
    if m:
        rows.append((float(m.group(2)), m.group(1).strip(), m.group(3).strip()))
start = min(t for t, c, s in rows if c == 'hearth-commit')
for a, b in [(-1.5, -1.0), (-1.0, -0.5), (-0.5, 0), (0, 0.5), (0.5, 1.0), (5, 5.5)]:
    c = collections.Counter(s for t, _, s in rows if start + a <= t < start + b)
    threads = collections.Counter(th for t, th, _ in rows if start + a <= t < start + b)
    n = sum(c.values())
    print(f"== {a}..{b} s from the first commit: {n} samples")
    print("   threads: " + ", ".join(f"{th} {100 * k / max(n, 1):.1f}%" for th, k in threads.most_common(6)))
    for s, k in c.most_common(10):
        print(f"   {100 * k / max(n, 1):5.1f}% {s[:100]}")
