#!/usr/bin/env python3
"""A soak run: http_server on a scaling pool under a load that rises and falls
for --duration, with churned connections (a reconnect every 20 requests),
long-lived keep-alive connections that come and go idle, and a /metrics
scrape every second. Samples the server's RSS, descriptors and threads every
second, writes soak.csv and soak.svg, prints a summary, and fails (exit 1) if
any request or scrape failed, or if RSS or descriptors grew beyond the
warm-up's noise.

usage: scripts/soak.py BUILD_DIR [--duration 10m]
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def seconds(text):
    m = re.fullmatch(r"(\d+)(s|m|h)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 60s, 10m, 1h")
    value = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 20 <= value <= 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 20s and 24h")
    return value


ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--duration", type=seconds, default=seconds("10m"))
args = ap.parse_args()
duration = args.duration
http_server = os.path.join(args.build, "examples", "http_server")
loadgen = os.path.join(args.build, "examples", "loadgen")

tmp = tempfile.mkdtemp(prefix="loopscale-soak-")
shm = os.path.join(tmp, "shm")
config = os.path.join(tmp, "soak.toml")
with open(config, "w") as f:
    f.write('[pool]\nname = "soak"\n[scaling]\nmin_loops = 1\nmax_loops = 4\n'
            'window = "250ms"\npatience_cycles = 3\nmax_ramp_down_step = 2\n'
            f'[metrics]\nenabled = true\nshm_path = "{shm}"\n')

server = subprocess.Popen([http_server, "--port=0", f"--config={config}"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
m = re.search(r":(\d+) ", server.stdout.readline())
if not m:
    server.kill()
    sys.exit("soak: http_server did not start: " + server.stderr.read())
port = int(m.group(1))

# The load: a 40 s cycle rising from 50 to 300 requests per second of
# /work?ms=5 and falling back, over connections that reconnect every 20
# requests; and 6 keep-alive connections that work in the middle of each
# cycle and stay connected, idle, the rest of it.
cycle = 40
open_phases, ka_phases = [], []
for start in range(0, duration, cycle):
    for offset, rps in ((0, 50), (8, 150), (16, 300), (24, 150), (32, 50)):
        if start + offset < duration:
            open_phases.append(f"{start + offset}s:{rps}rps")
    for offset, conns in ((0, 0), (12, 6), (28, 0)):
        if start + offset < duration:
            ka_phases.append(f"{start + offset}s:{conns}c")
common = [f"--duration={duration}s"]
# The load generators print a line a second: to files, not pipes, which
# would fill (64 KiB, about nine minutes of lines) and stop them mid-run.
open_log = open(os.path.join(tmp, "open.log"), "w+")
ka_log = open(os.path.join(tmp, "keepalive.log"), "w+")
open_load = subprocess.Popen(
    [loadgen, f"--url=http://127.0.0.1:{port}/work?ms=5", "--mode=open",
     "--phases=" + ",".join(open_phases), "--requests_per_connection=20",
     f"--csv={os.path.join(tmp, 'open.csv')}"] + common,
    stdout=open_log, stderr=subprocess.STDOUT, text=True)
ka_load = subprocess.Popen(
    [loadgen, f"--url=http://127.0.0.1:{port}/work?ms=2", "--mode=closed", "--preconnect",
     "--phases=" + ",".join(ka_phases)] + common,
    stdout=ka_log, stderr=subprocess.STDOUT, text=True)

scrape_failures = []


def scrape_forever(stop):
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                if not data.startswith(b"HTTP/1.1 200"):
                    scrape_failures.append(data[:60])
        except OSError as e:
            scrape_failures.append(str(e))
        stop.wait(1.0)  # one scrape a second


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    rss = int(re.search(r"^VmRSS:\s+(\d+)", text, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", text, re.M).group(1))
    return rss, threads


stop = threading.Event()
scraper = threading.Thread(target=scrape_forever, args=(stop,))
scraper.start()
samples = []  # (t, rss KiB, fds, threads)
start = time.monotonic()
print(f"soak: http_server on port {port}, {duration} s; sampling every second")
overran = False
while open_load.poll() is None or ka_load.poll() is None:
    t = time.monotonic() - start
    if t > duration + 60:  # the generators drain for at most a few seconds
        overran = True
        for p in (open_load, ka_load):
            if p.poll() is None:
                p.kill()
        break
    try:
        rss, threads = proc_status(server.pid)
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
    except (OSError, AttributeError):
        break
    samples.append((t, rss, fds, threads))
    if len(samples) % 30 == 0:
        print(f"  t={t:5.0f}s  rss={rss / 1024:6.1f} MiB  fds={fds:4d}  threads={threads}",
              flush=True)
    time.sleep(1.0)  # the sampling period
stop.set()
scraper.join()
open_load.wait()
ka_load.wait()
open_log.seek(0)
ka_log.seek(0)
open_out, ka_out = open_log.read(), ka_log.read()
server.terminate()
try:
    server.wait(timeout=30)
except subprocess.TimeoutExpired:
    server.kill()
    server.wait()


def summary(out):
    m = re.search(r"summary: sent=(\d+) done=(\d+) errors=(\d+) dropped=(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 1, 0)


o_sent, o_done, o_err, o_drop = summary(open_out)
k_sent, k_done, k_err, k_drop = summary(ka_out)

with open("soak.csv", "w") as f:
    f.write("second,rss_kib,fds,threads\n")
    for t, rss, fds, threads in samples:
        f.write(f"{t:.1f},{rss},{fds},{threads}\n")

# Growth beyond warm-up: the last quarter against the first fifth (at least
# 10 s), which saw the same load cycle.
warm = [s for s in samples if s[0] < max(10, duration / 5)]
late = [s for s in samples if s[0] >= duration * 3 / 4]
failures = []
if overran:
    failures.append(f"the load generators were still running {duration + 60} s after "
                    "the start: killed")
if o_err or k_err or o_drop or k_drop or o_done < o_sent or k_done < k_sent:
    failures.append(f"requests failed: open loop {o_err} errors, {o_drop} dropped, "
                    f"{o_sent - o_done} unanswered; keep-alive {k_err} errors")
if scrape_failures:
    failures.append(f"{len(scrape_failures)} /metrics scrapes failed: {scrape_failures[:2]}")
if server.returncode != 0:
    failures.append(f"http_server exited with {server.returncode}")
if warm and late:
    rss_warm, rss_late = max(s[1] for s in warm), statistics.median(s[1] for s in late)
    fds_warm, fds_late = max(s[2] for s in warm), statistics.median(s[2] for s in late)
    rss_limit = rss_warm * 1.10 + 4096  # 10% and 4 MiB of allocator noise
    fds_limit = fds_warm + 8            # connections that happen to be open
    if rss_late > rss_limit:
        failures.append(f"RSS grew: {rss_warm / 1024:.1f} MiB at most in warm-up, "
                        f"{rss_late / 1024:.1f} MiB (median) in the last quarter")
    if fds_late > fds_limit:
        failures.append(f"descriptors grew: {fds_warm} at most in warm-up, "
                        f"{fds_late:.0f} (median) in the last quarter")
else:
    failures.append("too few samples")

# The chart.
W, H, PAD = 800, 300, 50
tmax = max((s[0] for s in samples), default=1) or 1


def polyline(values, vmax, color):
    pts = " ".join(f"{PAD + (W - 2 * PAD) * t / tmax:.1f},"
                   f"{H - PAD - (H - 2 * PAD) * v / vmax:.1f}" for t, v in values)
    return f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>'


rss_max = max((s[1] for s in samples), default=1) * 1.2
fds_max = max((s[2] for s in samples), default=1) * 1.2
thr_max = max((s[3] for s in samples), default=1) * 1.2
with open("soak.svg", "w") as f:
    f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'font-family="sans-serif"><rect width="{W}" height="{H}" fill="white"/>'
            f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">loopscale soak: '
            f'RSS, descriptors and threads over {duration} s (each scaled to its maximum)</text>'
            + polyline([(s[0], s[1]) for s in samples], rss_max, "#1f77b4")
            + polyline([(s[0], s[2]) for s in samples], fds_max, "#ff7f0e")
            + polyline([(s[0], s[3]) for s in samples], thr_max, "#2ca02c")
            + f'<text x="{PAD}" y="{H - 15}" font-size="11" fill="#1f77b4">RSS (max '
            f'{rss_max / 1.2 / 1024:.1f} MiB)</text>'
            f'<text x="{PAD + 200}" y="{H - 15}" font-size="11" fill="#ff7f0e">descriptors '
            f'(max {fds_max / 1.2:.0f})</text>'
            f'<text x="{PAD + 400}" y="{H - 15}" font-size="11" fill="#2ca02c">threads '
            f'(max {thr_max / 1.2:.0f})</text></svg>\n')

print(f"soak: {duration} s; open loop {o_done}/{o_sent} answered, keep-alive "
      f"{k_done}/{k_sent}; {len(scrape_failures)} scrape failures")
if samples:
    print(f"soak: RSS {min(s[1] for s in samples) / 1024:.1f}..{max(s[1] for s in samples) / 1024:.1f}"
          f" MiB, descriptors {min(s[2] for s in samples)}..{max(s[2] for s in samples)}, "
          f"threads {min(s[3] for s in samples)}..{max(s[3] for s in samples)}")
print("soak: soak.csv, soak.svg")
if failures:
    for f_ in failures:
        print("FAIL " + f_)
    sys.exit(1)
print("OK: no request failed; RSS and descriptors flat after warm-up")
