#!/usr/bin/env python3
"""http_server's overload protection, end to end, with the level injected
(--inject_overload, Admission::inject): no timing, no load needed.

- a share of requests is refused with 503 and Retry-After, evenly spread,
  before any work; /metrics is never refused and reports the level and the
  refusals; loadgen counts the 503s apart from errors;
- the flags are checked: a bad --overload or --inject_overload is named.

usage: overload_test.py HTTP_SERVER LOADGEN
"""
import os
import re
import socket
import subprocess
import sys
import tempfile

from e2e_support import DEADLINE, check, failures

http_server, loadgen = sys.argv[1:3]
with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
    f.write('[pool]\nname = "overload-test"\n[scaling]\nmin_loops = 1\nmax_loops = 1\n'
            '[overload]\nenabled = true\n')
    config = f.name


def start(*args):
    proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    m = re.search(r"listening on [\d.]+:(\d+)", proc.stdout.readline())
    if not m:
        proc.kill()
        raise SystemExit(f"http_server did not start: {proc.stderr.read()}")
    return proc, int(m.group(1))


def read_answer(s, buf):
    """One HTTP answer from `s` (head, body); `buf` holds what was read beyond."""
    while b"\r\n\r\n" not in buf[0]:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf[0] += data
    head, rest = buf[0].split(b"\r\n\r\n", 1)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(rest) < length:
        rest += s.recv(65536)
    buf[0] = rest[length:]
    return head.decode(), rest[:length].decode()


proc, port = start(http_server, "--port=0", f"--config={config}", "--inject_overload=0.5")
try:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        buf = [b""]
        codes = []
        for _ in range(10):
            s.sendall(b"GET /work?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = read_answer(s, buf)
            codes.append(int(head.split(" ")[1]))
            if codes[-1] == 503:
                check("Retry-After: 1" in head and "overloaded" in body,
                      "a refused request: 503 with Retry-After and a reason")
        check(codes == [200, 503] * 5,
              f"at level 0.5 every other request on a loop is refused: {codes}")
        # /metrics is never refused: a pool under pressure is when it is read.
        metrics = []
        for _ in range(4):
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = read_answer(s, buf)
            metrics.append((head.split(" ")[1], body))
        check(all(code == "200" for code, _ in metrics), "/metrics is always answered")
        text = metrics[-1][1]
        level = re.search(r"^loopscale_overload_level_ratio\{[^}]*\} (\S+)$", text, re.M)
        refused = re.search(r"^loopscale_overload_refused_total\{[^}]*\} (\S+)$", text, re.M)
        check(level is not None and float(level.group(1)) == 0.5,
              f"/metrics reports the level ({level.group(0) if level else 'missing'})")
        check(refused is not None and float(refused.group(1)) == 5,
              f"and the refusals ({refused.group(0) if refused else 'missing'})")
    r = subprocess.run([loadgen, f"--url=http://127.0.0.1:{port}/", "--mode=closed",
                        "--phases=0s:2c", "--duration=1s"], capture_output=True, text=True,
                       timeout=DEADLINE)
    m = re.search(r"summary: sent=(\d+) done=(\d+) errors=(\d+) .* refused=(\d+)", r.stdout)
    check(m is not None and int(m.group(3)) == 0 and int(m.group(4)) > 0 and
          abs(int(m.group(2)) - int(m.group(4))) <= 2,
          f"loadgen counts 503s as refused, not errors, about half: "
          f"{m.group(0) if m else r.stdout[-300:]}")
finally:
    proc.terminate()
    check(proc.wait(timeout=DEADLINE) == 0, "the server stops cleanly")

# --overload=off with no injection: nothing is refused, whatever the config.
proc, port = start(http_server, "--port=0", f"--config={config}", "--overload=off")
try:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        buf = [b""]
        codes = []
        for _ in range(5):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            codes.append(read_answer(s, buf)[0].split(" ")[1])
        check(codes == ["200"] * 5, f"--overload=off serves everything: {codes}")
finally:
    proc.terminate()
    proc.wait(timeout=DEADLINE)

for flag, says in (("--overload=sometimes", "--overload=sometimes"),
                   ("--inject_overload=2", "--inject_overload=2")):
    r = subprocess.run([http_server, "--port=0", flag], capture_output=True, text=True,
                       timeout=DEADLINE)
    check(r.returncode == 2 and says in r.stderr, f"a bad {flag.split('=')[0]} is named "
          f"({r.stderr.strip()})")

os.unlink(config)
print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
