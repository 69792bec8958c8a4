#!/usr/bin/env python3
"""One line per run of an A/B directory: hearth's and the ceiling's CPU per
delivery, their ratio, deliveries per second and p50/p99.
Usage: summary.py DIR"""
import glob, json, os, sys

for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    d = json.load(open(f))
    h, c = d["hearth"], d.get("ceiling") or {}
    hc, cc = h["server_cpu_us_per_delivery"], c.get("server_cpu_us_per_delivery")
    ratio = f"{hc / cc:.3f}" if cc else "-"
    print(f"{os.path.basename(f)[:-5]:18} cpu/delivery {hc:.4f} vs {cc or 0:.4f} µs ({ratio}×)"
          f"  deliveries/s {h['deliveries_per_sec']:,.0f} ({d['ratio']['throughput']:.3f}×)"
          f"  p50/p99 {h['latency_ms']['p50']:.0f}/{h['latency_ms']['p99']:.0f} ms"
          f" vs {c.get('latency_ms', {}).get('p99', 0):.0f}  lost/dup/reord"
          f" {h['lost']}/{h['duplicated']}/{h['reordered']}")
