#!/usr/bin/env python3
"""Prints the A/B table of run.sh's reports: summary.py DIR"""
import json, glob, os, re, sys

d = sys.argv[1]
rows = []
for f in sorted(glob.glob(os.path.join(d, "*.json"))):
    label = os.path.basename(f)[:-5]
    r = json.load(open(f))
    h, c = r["hearth"], r.get("ceiling")
    line = [label, r["machine"]["loadavg_before"].split()[0]]
    if r["scenario"] in ("post", "history"):
        line += [f'{h["requests_per_sec"]:.0f} req/s', f'{h["server_cpu_us_per_request"]:.1f} µs']
        if c:
            line += [f'{h["requests_per_sec"] / c["requests_per_sec"]:.2f}× req/s']
    else:
        line += [f'{h["deliveries_per_sec"] / 1e6:.3f} M/s', f'{h["server_cpu_us_per_delivery"]:.3f} µs',
                 f'p99 {h["latency_ms"]["p99"]:.0f} ms',
                 f'{h["lost"]}/{h["duplicated"]}/{h["reordered"]}', 'passed' if r["passed"] else 'FAILED']
        if c:
            line += [f'thr {h["deliveries_per_sec"] / c["deliveries_per_sec"]:.2f}×',
                     f'eff {c["server_cpu_us_per_delivery"] / h["server_cpu_us_per_delivery"]:.2f}',
                     f'p99 {h["latency_ms"]["p99"] / c["latency_ms"]["p99"]:.2f}×']
    txt = open(os.path.join(d, label + ".txt")).read()
    m = re.search(r"committer_ticks (\d+)", txt)
    if m:
        line.append(f"committer {m.group(1)} ticks")
    rows.append(" | ".join(line))
print("\n".join(rows))
