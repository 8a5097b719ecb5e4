#!/usr/bin/env python3
"""http_server's job types end to end: after GET /work?ms=50 ten times, the
"work" job reads about 0.5 s busy and 10 entries in /metrics and in
loopscale-top --format json, and each loop's busy time is the sum over its
job types. The lower bound is exact (each request sleeps 50 ms inside the
job); the upper one is generous, for loaded machines.

usage: jobs_test.py HTTP_SERVER LOOPSCALE_TOP
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from e2e_support import DEADLINE, check, failures

http_server, top = sys.argv[1:3]


def get(sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head.decode(), body.decode()


def samples(text, family):
    """{(loop, job): value} of a loop family; job is None for unlabelled."""
    out = {}
    for m in re.finditer(r"^" + family + r"\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[(labels["loop"], labels.get("job"))] = float(m.group(2))
    return out


shm = f"/dev/shm/loopscale-jobs-{os.getpid()}"
work = tempfile.mkdtemp(prefix="loopscale-jobs-")
config = os.path.join(work, "pool.toml")
with open(config, "w") as f:
    f.write('[pool]\nname = "web"\n[scaling]\nmin_loops = 1\nmax_loops = 2\nwindow = "100ms"\n'
            f'[metrics]\nenabled = true\nshm_path = "{shm}"\nservice = "web"\n')
proc = subprocess.Popen([http_server, "--port=0", f"--config={config}"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    m = re.search(r"listening on [\d.]+:(\d+)", proc.stdout.readline())
    if not m:
        raise SystemExit(f"http_server did not start: {proc.stderr.read()}")
    port = int(m.group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        for _ in range(10):
            head, body = get(s, "/work?ms=50")
            if not head.startswith("HTTP/1.1 200"):
                raise SystemExit(f"/work answered {head.splitlines()[0]}")
        ended_ns = time.monotonic_ns()
        _, text = get(s, "/metrics")

    busy = samples(text, "loopscale_loop_busy_seconds_total")
    job_busy = samples(text, "loopscale_loop_job_busy_seconds_total")
    jobs = samples(text, "loopscale_loop_jobs_total")
    work_busy = sum(v for (loop, job), v in job_busy.items() if job == "work")
    work_count = sum(v for (loop, job), v in jobs.items() if job == "work")
    check(0.5 <= work_busy < 1.0, f"/metrics: work busy {work_busy:.3f} s (10 x 50 ms)")
    check(work_count == 10, f"/metrics: work entered {work_count:g} times")
    for job in ("accept", "parse", "metrics", "other"):
        check(any(j == job for (_, j) in job_busy), f"/metrics: job {job} is reported")
    check(sum(v for (_, j), v in jobs.items() if j == "parse") >= 11, "/metrics: parse >= 11 entries")
    for (loop, _), total in busy.items():
        parts = sum(v for (l, _), v in job_busy.items() if l == loop)
        check(abs(parts - total) < 1e-6,
              f"/metrics: loop {loop} busy {total:.6f} s = sum of its jobs {parts:.6f} s")

    # The shared memory is published once per window: wait for a publish
    # after the requests, then read what loopscale-top reads.
    until = time.monotonic() + DEADLINE
    while True:
        r = subprocess.run([top, f"--shm={shm}", "--once", "--format=json"],
                           capture_output=True, text=True, timeout=DEADLINE)
        doc = json.loads(r.stdout)
        mine = [p for p in doc["processes"] if p["pid"] == proc.pid]
        if mine and mine[0]["heartbeat_ns"] > ended_ns:
            break
        if time.monotonic() > until:
            raise SystemExit("no publish after the requests")
        time.sleep(0.05)  # poll interval
    service = next(s for s in doc["services"] if s["name"] == "web")
    w = service["jobs"].get("work", {})
    check(0.5e9 <= w.get("busy_ns", 0) < 1.0e9 and w.get("count") == 10,
          f"loopscale-top: work {w}")
    for loop in mine[0]["loops"]:
        parts = sum(j["busy_ns"] for j in loop["jobs"].values())
        check(parts == loop["busy_ns"],
              f"loopscale-top: loop {loop['index']} busy {loop['busy_ns']} ns = sum of its jobs")
    table = subprocess.run([top, f"--shm={shm}", "--once"], capture_output=True, text=True,
                           timeout=DEADLINE).stdout
    check(re.search(r"busy with: work \d+\.\d% \(10\)", table) is not None,
          "the table's breakdown puts work first, entered 10 times")
finally:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if os.path.exists(shm):
        os.unlink(shm)
    subprocess.run(["rm", "-rf", work])

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
