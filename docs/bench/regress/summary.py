#!/usr/bin/env python3
"""One line per report under the given directories: crash loops, stalled
readers (others' latency against the baseline) and login storms.
Usage: summary.py DIR..."""
import glob, json, os, sys

def lat(r):
    l = r["latency_ms"]
    return f"{l['p50']:.0f}/{l['p99']:.0f}/{l['max']:.0f}"

for d in sys.argv[1:]:
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        r = json.load(open(f))
        name = os.path.relpath(f)[:-5]
        if r["scenario"] == "crash":
            print(f"{name:34} acked {r['acked']:,} lost/dup/reord {r['lost']}/{r['duplicated']}/{r['reordered']}"
                  f" gaps/unacked-stored/errors/failed starts {r['gaps']}/{r['stored_without_ack']}/{r['errors']}/{r['failed_restarts']}"
                  f" restart median/slowest {r['median_restart_ms']:.0f}/{r['slowest_restart_ms']:.0f} ms passed {r['passed']}")
            continue
        b, h, c = r["baseline"], r["hearth"], r["comparison"]
        line = (f"{name:34} p50/p99/max ms baseline {lat(b)} -> {lat(h)}"
                f"  p99 {c['p99_latency']:.2f}x p50 {c['p50_latency']:.2f}x deliveries/s {c['deliveries_per_sec']:.2f}x"
                f"  lost/dup/reord {h['lost']}/{h['duplicated']}/{h['reordered']}")
        if r.get("stall"):
            s = r["stall"]
            line += f"  stalled {s['clients']}: cut {s['cut']}, resumed {s['resumed']}, server counted {s['server_too_slow_disconnects']}"
        if r.get("logins"):
            g = r["logins"]
            line += f"  logins {g['attempted']}: ok {g['ok']}, refused {g['refused']}, other {g['other']}"
        w = h.get("server_runqueue_wait_normal_secs")
        if w is not None:
            line += f"  server wait normal-priority {b.get('server_runqueue_wait_normal_secs', 0):.1f} -> {w:.1f} s"
        print(line + f"  passed {r['passed']}")
