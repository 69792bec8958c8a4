#!/usr/bin/env python3
# Fills a hearth server over HTTP: signs up "poster" and "reader", makes ROOMS
# rooms the reader joins, and posts N messages round-robin (every 10th names
# the reader). Usage: fill-http.py HOST PORT N ROOMS
import http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2]); n = int(sys.argv[3]); rooms = int(sys.argv[4])
c = http.client.HTTPConnection(host, port)
def req(m, p, body=None, tok=None):
    h = {"Content-Type": "application/json"}
    if tok: h["Authorization"] = "Bearer " + tok
    c.request(m, p, json.dumps(body) if body is not None else None, h)
    r = c.getresponse(); d = r.read()
    return r.status, (json.loads(d) if d else None)
req("POST", "/api/v1/signup", {"username":"poster","email":"p@example.com","password":"a long password"})
req("POST", "/api/v1/signup", {"username":"reader","email":"r@example.com","password":"a long password"})
_, a = req("POST", "/api/v1/login", {"login":"poster","password":"a long password"}); tok = a["token"]
_, b = req("POST", "/api/v1/login", {"login":"reader","password":"a long password"}); rtok = b["token"]
ids = []
for i in range(rooms):
    _, r = req("POST", "/api/v1/rooms", {"name": f"room{i}"}, tok); ids.append(r["room"]["id"])
    req("POST", f"/api/v1/rooms/{ids[-1]}/join", {}, rtok)
for k in range(n):
    s, _ = req("POST", f"/api/v1/rooms/{ids[k % rooms]}/messages", {"body": f"message {k} @reader" if k % 10 == 0 else f"message {k}"}, tok)
    assert s == 201, s
print(rtok)
