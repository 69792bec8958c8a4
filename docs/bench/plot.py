#!/usr/bin/env python3
"""Draws docs/bench/ladder.svg from the ladder's JSON reports, by hand (no
plotting library): deliveries/s (hearth and the raw ceiling) and hearth's
p99 post->delivery latency against the number of clients.

    python3 docs/bench/plot.py docs/bench/ladder-*.json > docs/bench/ladder.svg
"""
import json
import sys

runs = []
for path in sys.argv[1:]:
    with open(path) as f:
        r = json.load(f)
    if r.get("scenario") != "fanout":
        continue
    c = r.get("ceiling") or {}
    runs.append((r["hearth"]["clients"], r["hearth"]["deliveries_per_sec"],
                 c.get("deliveries_per_sec"), r["hearth"]["latency_ms"]["p99"],
                 r["settings"]["rate"]))
runs.sort()
if not runs:
    sys.exit("no fanout reports given")

W, H = 760, 420
L, R, T, B = 80, 80, 50, 60
pw, ph = W - L - R, H - T - B
xs = [r[0] for r in runs]
xmax = max(xs) * 1.05
ymax = max(max(r[1], r[2] or 0) for r in runs) * 1.15
lmax = max(r[3] for r in runs) * 1.25


def x(v):
    return L + pw * v / xmax


def y(v):
    return T + ph * (1 - v / ymax)


def yl(v):
    return T + ph * (1 - v / lmax)


def fmt(v):
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.0f} k"


out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">'
       f'hearth fan-out, one room, {runs[0][4]:g} msgs/s: deliveries/s and p99 latency vs clients</text>']
for i in range(6):
    v = ymax * i / 5
    out.append(f'<line x1="{L}" x2="{L + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
    lv = lmax * i / 5
    out.append(f'<text x="{L + pw + 6}" y="{yl(lv) + 4:.1f}" fill="#c0392b">{lv:.0f} ms</text>')
for c in xs:
    out.append(f'<text x="{x(c):.1f}" y="{T + ph + 18}" text-anchor="middle">{c:,}</text>')
out.append(f'<line x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}" stroke="black"/>')
out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="black"/>')
out.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">clients in the room</text>')
out.append(f'<text x="18" y="{T + ph / 2}" transform="rotate(-90 18 {T + ph / 2})" '
           f'text-anchor="middle">deliveries/s</text>')
out.append(f'<text x="{W - 14}" y="{T + ph / 2}" transform="rotate(90 {W - 14} {T + ph / 2})" '
           f'text-anchor="middle" fill="#c0392b">p99 post→delivery</text>')


def line(points, color, dash=""):
    pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    d = f' stroke-dasharray="{dash}"' if dash else ""
    out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{d}/>')
    for px, py in points:
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}"/>')


line([(x(r[0]), y(r[1])) for r in runs], "#2c6fbb")
ceil = [(x(r[0]), y(r[2])) for r in runs if r[2]]
if ceil:
    line(ceil, "#888", "5,4")
line([(x(r[0]), yl(r[3])) for r in runs], "#c0392b", "2,3")
lx = L + 12
for i, (label, color, dash) in enumerate([("hearth deliveries/s", "#2c6fbb", ""),
                                          ("raw ceiling deliveries/s", "#888", "5,4"),
                                          ("hearth p99 latency (right axis)", "#c0392b", "2,3")]):
    ly = T + 14 + i * 18
    d = f' stroke-dasharray="{dash}"' if dash else ""
    out.append(f'<line x1="{lx}" x2="{lx + 28}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{d}/>')
    out.append(f'<text x="{lx + 34}" y="{ly + 4}">{label}</text>')
out.append("</svg>")
print("\n".join(out))
