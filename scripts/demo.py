#!/usr/bin/env python3
"""The README's first command, after the build: http_server on a loopscale
pool, driven by loadgen through idle -> ramp -> peak -> idle (about 60 s),
watched live through the shared memory with loopscale-top. Ends with a
timeline of offered load, active loops and mean utilization, and an SVG chart
of it (demo-timeline.svg), with what the loops were busy with at peak (the
job types' shares). Exits 0 only if the pool scaled up under the load
and back down after it.

With --keep-alive the load comes from eight keep-alive clients (loadgen
--mode closed --preconnect) that connect during the idle start and stay
connected: the pool can only use the loops it wakes because their
connections move there (loopscale/session.hpp); the timeline counts the moves.

usage: scripts/demo.py BUILD_DIR CONFIG [--quick] [--keep-alive]
"""
import json
import os
import re
import subprocess
import sys
import time

build, config = sys.argv[1:3]
quick = "--quick" in sys.argv
keep_alive = "--keep-alive" in sys.argv
shm = re.search(r'shm_path\s*=\s*"([^"]+)"', open(config).read()).group(1)
service = re.search(r'service\s*=\s*"([^"]+)"', open(config).read()).group(1)
scale = 0.5 if quick else 1.0
if keep_alive:
    # (start second, busy connections of the eight, each a loop's worth of
    # /work?ms=10 at most: 100 requests per second)
    phases = [(0, 0), (10, 1), (18, 2), (26, 4), (34, 8), (46, 0)]
else:
    # (start second, requests per second of /work?ms=10 = loops' worth x 100)
    phases = [(0, 20), (10, 120), (18, 220), (26, 340), (42, 20)]
duration = 60
phases = [(int(t * scale), r) for t, r in phases]
duration = int(duration * scale)

if os.path.exists(shm):
    os.unlink(shm)
server = subprocess.Popen([f"{build}/examples/http_server", "--port=0", f"--config={config}"],
                          stdout=subprocess.PIPE, text=True)
m = re.search(r":(\d+) ", server.stdout.readline())
if not m:
    server.kill()
    sys.exit("demo: http_server did not start")
port = int(m.group(1))
if keep_alive:
    spec = ",".join(f"{t}s:{c}c" for t, c in phases)
    print(f"http_server on port {port}; loadgen --mode closed --preconnect --phases {spec}\n"
          f"(8 keep-alive connections opened at the start and kept; each busy one sends\n"
          f"/work?ms=10 requests back to back, a loop's worth when alone on its loop)\n")
    load_args = ["--mode=closed", "--preconnect"]
else:
    spec = ",".join(f"{t}s:{r}rps" for t, r in phases)
    print(f"http_server on port {port}; loadgen --mode open --phases {spec} "
          f"(each request keeps a loop busy 10 ms)\n")
    load_args = ["--mode=open", "--requests_per_connection=10"]
loadgen = subprocess.Popen(
    [f"{build}/examples/loadgen", f"--url=http://127.0.0.1:{port}/work?ms=10",
     f"--phases={spec}", f"--duration={duration}s", "--csv=demo-load.csv"] + load_args,
    stdout=open("demo-load.log", "w"), stderr=subprocess.STDOUT, text=True)


def offered(t):
    """Requests per second offered at `t` (keep-alive: busy connections x 100)."""
    rate = phases[0][1]
    for start, r in phases:
        if start <= t:
            rate = r
    return rate * 100 if keep_alive else rate


timeline = []  # (t, offered rps, active loops, mean utilization, states)
start = time.monotonic()
print(f"{'time':>6} {'offered':>8} {'active':>6} {'util':>5}  loops")
while loadgen.poll() is None:
    time.sleep(0.5)  # the sampling period of the live view
    t = time.monotonic() - start
    r = subprocess.run([f"{build}/examples/loopscale-top", f"--shm={shm}", "--once",
                        "--format=json"], capture_output=True, text=True)
    if r.returncode != 0:
        continue
    doc = json.loads(r.stdout)
    svc = next((s for s in doc["services"] if s["name"] == service), None)
    procs = [p for p in doc["processes"] if p["service"] == service and not p["stale"]]
    if svc is None or not procs:
        continue
    loops = procs[0]["loops"]
    states = "".join("A" if l["state"] == "active" else
                     "d" if l["state"] == "draining" else "." for l in loops)
    bars = " ".join(
        {"active": "A", "draining": "D", "suspending": "s"}.get(l["state"], "-") +
        "[" + ("#" * round(l["utilization"] * 8)).ljust(8, ".") + "]" for l in loops)
    moves = sum(l.get("moves_in", 0) for l in loops)
    # The service's busy time by job type so far (http_server marks accept,
    # parse, work and metrics; the rest is "other").
    job_busy = {name: j["busy_ns"] for name, j in svc.get("jobs", {}).items()}
    timeline.append((t, offered(t), svc["active_loops"], svc["utilization"], states, moves,
                     job_busy))
    print(f"{t:5.1f}s {offered(t):6d}/s {svc['active_loops']:6d} {svc['utilization']:5.2f}  {bars}"
          f"  moves {moves:.0f}", flush=True)

server.terminate()
server.wait(timeout=30)
summary = "".join(l for l in open("demo-load.log") if l.startswith("summary:"))

print("\nTimeline (5 s buckets)")
print(f"{'from':>5} {'offered':>8} {'active loops':>13} {'mean util':>10} {'moves':>6}")
moved_before = 0
for b in range(0, duration, 5):
    rows = [x for x in timeline if b <= x[0] < b + 5]
    if rows:
        moved = max(x[5] for x in rows)
        print(f"{b:4d}s {max(x[1] for x in rows):6d}/s "
              f"{min(x[2] for x in rows):5d} .. {max(x[2] for x in rows):<5d}"
              f"{sum(x[3] for x in rows) / len(rows):10.2f} {moved - moved_before:6.0f}")
        moved_before = moved

# What the loops were busy with at peak: the job types' shares of the busy
# time in the 5 s bucket of the highest mean utilization.
peak_text = ""
buckets = [[x for x in timeline if b <= x[0] < b + 5] for b in range(0, duration, 5)]
buckets = [rows for rows in buckets if len(rows) >= 2]
if buckets:
    rows = max(buckets, key=lambda rows: sum(x[3] for x in rows) / len(rows))
    first, last_row = rows[0][6], rows[-1][6]
    spent = {n: last_row[n] - first.get(n, 0) for n in last_row}
    total = sum(spent.values())
    if total > 0:
        shares = sorted(spent.items(), key=lambda kv: -kv[1])
        peak_text = (f"busy at peak ({rows[0][0]:.0f}-{rows[-1][0]:.0f} s): " +
                     "  ".join(f"{n} {100 * v / total:.1f}%" for n, v in shares))
        print("\n" + peak_text)

# The chart: offered load (loops' worth), active loops, utilization x max.
W, H, PAD = 800, 320, 40
max_loops = 4
tmax = max((x[0] for x in timeline), default=1)


def pt(t, v):
    return f"{PAD + (W - 2 * PAD) * t / tmax:.1f},{H - PAD - (H - 2 * PAD) * v / max_loops:.1f}"


offered_pts = " ".join(pt(x[0], min(max_loops, x[1] / 100)) for x in timeline)
active_pts = " ".join(pt(x[0], x[2]) for x in timeline)
util_pts = " ".join(pt(x[0], x[3] * max_loops) for x in timeline)
grid = "".join(f'<line x1="{PAD}" x2="{W - PAD}" y1="{pt(0, v).split(",")[1]}" '
               f'y2="{pt(0, v).split(",")[1]}" stroke="#ddd"/>'
               f'<text x="{PAD - 8}" y="{float(pt(0, v).split(",")[1]) + 4}" '
               f'text-anchor="end" font-size="11">{v}</text>' for v in range(max_loops + 1))
svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">loopscale demo: offered load, active loops, utilization</text>
{grid}
<polyline points="{offered_pts}" fill="none" stroke="#999" stroke-width="2" stroke-dasharray="6,4"/>
<polyline points="{active_pts}" fill="none" stroke="#1f77b4" stroke-width="3"/>
<polyline points="{util_pts}" fill="none" stroke="#ff7f0e" stroke-width="1.5"/>
<text x="{PAD}" y="{H - 10}" font-size="11">0 s</text>
<text x="{W - PAD}" y="{H - 10}" font-size="11" text-anchor="end">{tmax:.0f} s</text>
<text x="{W - PAD}" y="40" font-size="11" text-anchor="end" fill="#999">- - offered load (loops' worth of work)</text>
<text x="{W - PAD}" y="54" font-size="11" text-anchor="end" fill="#1f77b4">active loops</text>
<text x="{W - PAD}" y="68" font-size="11" text-anchor="end" fill="#ff7f0e">mean utilization x {max_loops}</text>
<text x="{W / 2}" y="{H - 10}" font-size="11" text-anchor="middle">{peak_text}</text>
</svg>
"""
with open("demo-timeline.svg", "w") as f:
    f.write(svg)
if os.path.exists(shm):
    os.unlink(shm)

# The pool starts with every loop active and shrinks while the load is idle;
# "scaled up" means above where the idle phase left it.
ramp = phases[1][0]
idle = [x[2] for x in timeline if x[0] < ramp]
loaded = [x[2] for x in timeline if x[0] >= ramp]
before = idle[-1] if idle else 0
peak = max(loaded, default=0)
last = timeline[-1][2] if timeline else 0
print(f"\nloadgen: {summary.strip() or 'see demo-load.csv'}")
print(f"active loops: {before} after the idle start, peak {peak} under load, {last} at the end")
print("chart: demo-timeline.svg; per-second load: demo-load.csv")
print("(A active, D draining, s suspending, - suspended; # = utilization in the last window)")
moves = timeline[-1][5] if timeline else 0
if keep_alive:
    print(f"connection moves: {moves:.0f} (the keep-alive clients followed the loops)")
if peak > before and last < peak and (moves > 0 or not keep_alive):
    print("OK: the pool scaled up under load and back down after")
    sys.exit(0)
print("FAILED: the pool did not scale up and back down" +
      (" with its connections moving" if keep_alive else ""))
sys.exit(1)
