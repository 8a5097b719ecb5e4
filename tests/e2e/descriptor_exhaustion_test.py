#!/usr/bin/env python3
"""The server out of descriptors right after a scale-up (issue: faults at the
edges): http_server under `ulimit -n 96`, idle until the pool is at one
loop, then a flood of 200 connections, each with a /work request, held open. The loops
woken for it make sockets while no descriptor is free.

It used to end the listener (every later connection refused) and leak the
descriptors of connections whose move failed (CLOSE-WAIT, the process pinned
at its limit). Checked here: after the clients leave, the server answers
again, holds as many descriptors as before the flood, and no socket of its
port is left in CLOSE-WAIT.

The pool is read from shared memory with loopscale-top: a scrape of /metrics
would be a connection, and each accept makes its next socket on another
loop, making that loop's reactor before the flood.

usage: descriptor_exhaustion_test.py HTTP_SERVER LOOPSCALE_TOP LOADGEN
"""

import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time

from e2e_support import DEADLINE, check, eventually, failures

http_server, loopscale_top, loadgen = sys.argv[1:4]
# Descriptors. The scenario had 128; a loop busy with /work accepts
# slowly enough that 200 clients may not reach that many in 4 s. 96 is
# reached early in every run, before the pool grows.
LIMIT = 96
CLIENTS = 200


def get(port, path):
    """One request on its own connection; the response, or '' if none."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    return b"".join(chunks).decode(errors="replace")
                chunks.append(data)
    except OSError:
        return ""


def pool(shm):
    r = subprocess.run([loopscale_top, f"--shm={shm}", "--once", "--format=json"],
                       capture_output=True, text=True, timeout=DEADLINE)
    processes = json.loads(r.stdout)["processes"] if r.returncode == 0 else []
    return processes[0] if processes else {"active_loops": -1, "scale_ups": -1}


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets_of(port, state):
    """Sockets whose local port is `port` in TCP state `state` (hex, /proc/net/tcp)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                        n += 1
        except FileNotFoundError:
            pass
    return n


CLOSE_WAIT, ESTABLISHED = "08", "01"

with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "pool.toml")
    shm = os.path.join(tmp, "shm")
    with open(cfg, "w") as f:  # examples/config/demo.toml's scaling
        f.write('[pool]\nname = "fd-exhaustion"\n[scaling]\nmin_loops = 1\nmax_loops = 4\n'
                'window = "250ms"\npatience_cycles = 3\nmax_ramp_down_step = 3\n'
                f'[metrics]\nenabled = true\nshm_path = "{shm}"\n')
    err_path = os.path.join(tmp, "stderr")
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [http_server, "--port=0", f"--config={cfg}"], stdout=subprocess.PIPE,
            stderr=err, text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT)))
    line = proc.stdout.readline()
    m = re.search(r"listening on [\d.]+:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"http_server did not start: {line!r}")
    port = int(m.group(1))
    try:
        check(eventually(lambda: pool(shm)["active_loops"] == 1),
              "the idle server is at one loop")
        ups_before = pool(shm)["scale_ups"]
        check(eventually(lambda: sockets_of(port, ESTABLISHED) == 0), "no connection is open")
        baseline = descriptors(proc.pid)
        # The flood: CLIENTS keep-alive clients making /work load for 4 s. The
        # server accepts until it runs out of descriptors; its one loop
        # saturates, and the pool grows while no descriptor is free.
        flood = subprocess.Popen(
            [loadgen, f"--url=http://127.0.0.1:{port}/work?ms=10", "--mode=closed",
             f"--phases=0s:{CLIENTS}c", "--duration=4s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = [0]
        while flood.poll() is None:
            peak[0] = max(peak[0], descriptors(proc.pid))
            time.sleep(0.01)  # sampling interval, while loadgen runs
        out, _ = flood.communicate()
        print("     loadgen: " + out.strip().splitlines()[-1], flush=True)
        flooded = True
        check(peak[0] >= LIMIT - 1, f"the flood ran the server out of descriptors "
              f"(peak {peak[0]} of {LIMIT})")
        check(flooded and pool(shm)["scale_ups"] > ups_before, "and the pool scaled up under it")
        check(eventually(lambda: sockets_of(port, CLOSE_WAIT) == 0),
              f"no socket stays in CLOSE-WAIT ({sockets_of(port, CLOSE_WAIT)} left)")
        check(eventually(lambda: sockets_of(port, ESTABLISHED) == 0 and
                         descriptors(proc.pid) == baseline),
              f"the server's descriptors return to their baseline ({descriptors(proc.pid)}, "
              f"{baseline} before)")
        answer = get(port, "/")
        check(answer.startswith("HTTP/1.1 200"), f"and it accepts and answers again: {answer[:30]!r}")
        with open(err_path) as f:
            stderr = f.read()
        check("a handler threw" not in stderr and "listener ended" not in stderr,
              "no handler or listener failed: " + " | ".join(
                  l for l in stderr.splitlines() if "threw" in l or "ended" in l)[:300])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        check(proc.returncode == 0, f"http_server stops cleanly (exit {proc.returncode})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
