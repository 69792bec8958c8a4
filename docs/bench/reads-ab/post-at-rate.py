#!/usr/bin/env python3
# Posts to one room at a steady RATE per second for SECS seconds over one
# keep-alive connection. Usage: post-at-rate.py HOST PORT RATE SECS
import http.client, json, sys, time
host, port, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
c = http.client.HTTPConnection(host, port)
def req(m, p, body=None, tok=None):
    h = {"Content-Type": "application/json"}
    if tok: h["Authorization"] = "Bearer " + tok
    c.request(m, p, json.dumps(body) if body is not None else None, h)
    r = c.getresponse(); d = r.read()
    return r.status, (json.loads(d) if d else None)
req("POST", "/api/v1/signup", {"username":"poster","email":"p@example.com","password":"a long password"})
_, a = req("POST", "/api/v1/login", {"login":"poster","password":"a long password"}); tok = a["token"]
_, r = req("POST", "/api/v1/rooms", {"name": "r"}, tok); rid = r["room"]["id"]
t0 = time.time(); n = 0
while time.time() - t0 < secs:
    req("POST", f"/api/v1/rooms/{rid}/messages", {"body": f"message number {n} about deploys and builds"}, tok); n += 1
    nxt = t0 + n / rate
    d = nxt - time.time()
    if d > 0: time.sleep(d)
print(n)
