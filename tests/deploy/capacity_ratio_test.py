#!/usr/bin/env python3
"""The capacity ratio of deploy/prometheus/rules.yml, computed from two live
http_server processes, equals the one computed from loopscale-top's JSON.

Two servers of one service (max_loops 2 and 4) publish to one shared-memory
file. Both are read twice, before and after loads of known size (one client
on the first, three on the second, each sending a fixed number of
/work?ms=20): their /metrics, as Prometheus would scrape them, and
loopscale-top --format json. The scrapes become the input series of a
promtool rule test, one minute apart, so rate() over the rules' 1m window is
the increase over 60 s with nothing extrapolated, and the test asserts that
instance:loopscale_capacity:ratio and job:loopscale_capacity:ratio equal
sum(busy) / 60 / sum(max_loops) from the JSON, within 2% (the two readers
see the counters a moment apart; idle loops add microseconds). Nothing here
depends on timing: the loads end before the second reading, which waits
for a publish after they ended.

usage: capacity_ratio_test.py HTTP_SERVER LOOPSCALE_TOP SOURCE_DIR
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

http_server, top, source_dir = sys.argv[1:4]
rules = os.path.abspath(os.path.join(source_dir, "deploy", "prometheus", "rules.yml"))
DEADLINE = 60  # seconds; generous for loaded machines
# Per client, of /work?ms=20: 2 s of busy time each. The two readers see the
# servers at instants up to a window apart, and a /metrics answer rendered
# beside CPU hogs can count 10 ms of busy time (a handler's wall time): with
# 0.5 s per client that was 2.4% of the smaller figure, past the tolerance.
REQUESTS = 100
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start(config):
    proc = subprocess.Popen([http_server, "--port=0", f"--config={config}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on [\d.]+:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"http_server did not start: {line!r} {proc.stderr.read()}")
    return proc, int(m.group(1))


def get(port, path, keep=None):
    """One GET on a new connection, or on `keep` (a socket) if given."""
    s = keep or socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError(f"{path}: the server closed the connection")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError(f"{path}: the answer ended early")
            body += chunk
        return body.decode()
    finally:
        if keep is None:
            s.close()


def client(port, errors):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
            for _ in range(REQUESTS):
                get(port, "/work?ms=20", keep=s)
    except OSError as e:
        errors.append(str(e))


def scrape(port):
    """The loop and pool samples Prometheus would store, without comments."""
    samples = []
    for line in get(port, "/metrics").splitlines():
        if line.startswith(("loopscale_loop_busy_seconds_total", "loopscale_pool_max_loops")):
            series, value = line.rsplit(" ", 1)
            samples.append((series, float(value)))
    return samples


def top_json():
    r = subprocess.run([top, f"--shm={shm}", "--once", "--format=json"],
                       capture_output=True, text=True, timeout=DEADLINE)
    if r.returncode != 0:
        raise SystemExit(f"loopscale-top failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def by_pid(doc):
    return {p["pid"]: p for p in doc["processes"]}


work = tempfile.mkdtemp(prefix="loopscale-capacity-")
shm = f"/dev/shm/loopscale-capacity-{os.getpid()}"
servers = []
try:
    for name, max_loops in (("a", 2), ("b", 4)):
        config = os.path.join(work, f"{name}.toml")
        with open(config, "w") as f:
            f.write(f'[pool]\nname = "{name}"\n'
                    f'[scaling]\nmin_loops = 1\nmax_loops = {max_loops}\nwindow = "100ms"\n'
                    f'[metrics]\nenabled = true\nshm_path = "{shm}"\nservice = "web"\n')
        servers.append(start(config))
    (proc_a, port_a), (proc_b, port_b) = servers
    instance = {proc_a.pid: f"127.0.0.1:{port_a}", proc_b.pid: f"127.0.0.1:{port_b}"}

    before = {pid: scrape(int(i.rsplit(":", 1)[1])) for pid, i in instance.items()}
    top_before = by_pid(top_json())

    errors = []
    clients = [threading.Thread(target=client, args=(port, errors))
               for port in (port_a, port_b, port_b, port_b)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    check(not errors, f"the loads were answered ({errors[:1]})")
    ended_ns = time.monotonic_ns()

    # The shared memory is published once per window: wait for a publish
    # after the loads ended, so it holds all of their busy time.
    until = time.monotonic() + DEADLINE
    while True:
        top_after = by_pid(top_json())
        if all(top_after[pid]["heartbeat_ns"] > ended_ns for pid in instance):
            break
        if time.monotonic() > until:
            raise SystemExit("no publish after the loads ended")
        time.sleep(0.05)  # poll interval
    after = {pid: scrape(int(i.rsplit(":", 1)[1])) for pid, i in instance.items()}

    # Σ busy / 60 s / Σ max_loops from loopscale-top's JSON.
    def busy_s(pid, doc):
        return sum(loop["busy_ns"] for loop in doc[pid]["loops"]) / 1e9

    expected = {}
    for pid in instance:
        busy = busy_s(pid, top_after) - busy_s(pid, top_before)
        expected[pid] = (busy, top_after[pid]["max_loops"])
    print(f"     from loopscale-top: busy seconds and max_loops per process "
          f"{sorted(expected.values())}", flush=True)
    check(all(pid in top_before for pid in instance), "loopscale-top saw both processes before")
    busy_a, max_a = expected[proc_a.pid]
    busy_b, max_b = expected[proc_b.pid]
    check(max_a == 2 and max_b == 4, f"max_loops 2 and 4 ({max_a}, {max_b})")
    # The loads' size bounds the busy time from below: 20 ms per request.
    check(busy_a >= REQUESTS * 0.02 and busy_b >= 3 * REQUESTS * 0.02,
          f"the busy time covers the loads ({busy_a:.3f} s >= {REQUESTS * 0.02:g}, "
          f"{busy_b:.3f} s >= {3 * REQUESTS * 0.02:g})")

    # The promtool test: the scrapes at 0 and 1m, the rules, the assertions.
    lines = ["rule_files:", f"  - {rules}", "evaluation_interval: 1m", "tests:",
             "  - interval: 1m", "    input_series:"]
    for pid, inst in instance.items():
        b, a = dict(before[pid]), dict(after[pid])
        for series in sorted(a):
            labels = series[series.index("{") + 1:-1] if "{" in series else ""
            name = series.split("{")[0]
            full = f'{name}{{job="web",instance="{inst}"' + (f",{labels}}}" if labels else "}")
            lines += [f"      - series: '{full}'", f"        values: '{b.get(series, 0)!r} {a[series]!r}'"]
    lines.append("    promql_expr_test:")

    def close_to(expr, value, labels):
        # 1 when within 2% (promtool compares exactly, so the tolerance is
        # in the query).
        lines.extend([
            f"      - expr: abs({expr} - {value!r}) <= bool {0.02 * value!r}",
            "        eval_time: 1m",
            "        exp_samples:",
            f"          - labels: '{labels}'",
            "            value: 1"])

    for pid, inst in instance.items():
        busy, max_loops = expected[pid]
        close_to(f'instance:loopscale_capacity:ratio{{instance="{inst}"}}',
                 busy / 60 / max_loops, f'{{job="web",instance="{inst}"}}')
    close_to('job:loopscale_capacity:ratio{job="web"}',
             (busy_a + busy_b) / 60 / (max_a + max_b), '{job="web"}')
    test_file = os.path.join(work, "capacity_test.yml")
    with open(test_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["promtool", "test", "rules", test_file],
                       capture_output=True, text=True, timeout=DEADLINE)
    if r.returncode != 0:
        print(r.stdout + r.stderr, flush=True)
        # What the rules gave, for the log: promtool prints "got" on a miss.
        lines[lines.index("    promql_expr_test:") + 1:] = [
            "      - expr: instance:loopscale_capacity:ratio or job:loopscale_capacity:ratio",
            "        eval_time: 1m", "        exp_samples: []"]
        with open(test_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        shown = subprocess.run(["promtool", "test", "rules", test_file],
                               capture_output=True, text=True, timeout=DEADLINE)
        print(shown.stdout + shown.stderr, flush=True)
    check(r.returncode == 0,
          "the rules' capacity ratios, per process and for the service, equal "
          "Σ busy / Σ max_loops from loopscale-top (promtool test rules)")

    # Not vacuous: the same scrapes against a copy of the rules whose
    # max_loops is 5% off must fail.
    with open(rules) as f:
        good = f.read()
    needle = "expr: sum by (job, instance) (loopscale_pool_max_loops)\n"
    broken_rules = os.path.join(work, "broken-rules.yml")
    with open(broken_rules, "w") as f:
        f.write(good.replace(needle, needle[:-1] + " * 1.05\n"))
    check(needle in good, "the broken copy changes the max_loops rule")
    with open(test_file) as f:
        broken_test = f.read().replace(f"  - {rules}", f"  - {broken_rules}")
    with open(test_file, "w") as f:
        f.write(broken_test)
    r = subprocess.run(["promtool", "test", "rules", test_file],
                       capture_output=True, text=True, timeout=DEADLINE)
    check(r.returncode != 0, "a copy of the rules with max_loops 5% off fails the comparison")
finally:
    for proc, _ in servers:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    if os.path.exists(shm):
        os.unlink(shm)
    subprocess.run(["rm", "-rf", work])

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
