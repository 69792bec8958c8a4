# Time from starting `hearth serve` on an existing data directory to its first
# answered request (GET /healthz), three times. Usage: python3 coldstart.py DATA_DIR
import subprocess, time, socket, sys
def first_answer(port):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(100)
            s.close()
            if data.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        time.sleep(0.001)
for i in range(3):
    t0 = time.perf_counter()
    p = subprocess.Popen(["target/release/hearth","serve","--listen","127.0.0.1:18201","--data",sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first_answer(18201)
    t1 = time.perf_counter()
    rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]
    print(f"run {i+1}: first answered request after {(t1-t0)*1000:.1f} ms; RSS {rss} kB")
    p.terminate(); p.wait()
