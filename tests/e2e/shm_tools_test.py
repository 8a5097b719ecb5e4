#!/usr/bin/env python3
"""End-to-end checks of loopscale-top and examples/shm_reader.py on a file
that a separate process (shm_fixture) publishes: the JSON is checked by real
parsers, the Prometheus text by promtool, the two readers against each other,
and bad input for clear errors.

usage: shm_tools_test.py LOOPSCALE_TOP SHM_FIXTURE SHM_READER_PY
"""

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

from e2e_support import check, eventually, failures

top, fixture, reader_py = sys.argv[1:4]


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


path = f"/dev/shm/loopscale-e2e-{os.getpid()}"
proc = subprocess.Popen([fixture, path, "alpha:a1:4:10", "alpha:a2:2:20", "beta:b:3:30"],
                        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
try:
    check(proc.stdout.readline().strip() == "ready", "the fixture published")

    r = run(top, f"--shm={path}", "--once", "--format=json")
    check(r.returncode == 0, f"loopscale-top --format json exits 0 ({r.stderr.strip()})")
    tool = run(sys.executable, "-m", "json.tool", input=r.stdout)
    check(tool.returncode == 0, "python3 -m json.tool accepts the JSON")
    doc = json.loads(r.stdout)
    names = [s["name"] for s in doc["services"]]
    check(names == ["alpha", "beta"], f"services by name: {names}")
    alpha = doc["services"][0]
    check(alpha["processes"] == 1 and alpha["pools"] == 2 and alpha["loops"] == 6,
          "alpha: one process, two pools, six loops")
    check(same(alpha["utilization"], 1.75 / 6), "alpha: mean utilization")
    check(len(doc["processes"]) == 3 and all(not p["stale"] for p in doc["processes"]),
          "three live pools")
    check(all(k in doc["processes"][0]["loops"][0]
              for k in ("index", "state", "utilization", "busy_ns", "handlers",
                        "registrations")), "loops carry the documented keys")
    check(doc["processes"][0]["loops"][0]["state"] in ("active", "suspended"),
          "a loop's state is its name")
    check(r.stdout.count('"state"') == sum(len(p["loops"]) for p in doc["processes"]),
          "no key appears twice in a loop")

    py = run(sys.executable, reader_py, f"--shm={path}")
    check(py.returncode == 0, f"shm_reader.py exits 0 ({py.stderr.strip()})")
    pydoc = json.loads(py.stdout)
    check(len(pydoc["services"]) == len(doc["services"]), "same number of services")
    for a, b in zip(doc["services"], pydoc["services"]):
        check(set(a) == set(b), f"service {a['name']}: same figures "
              f"(only top: {sorted(set(a) - set(b))}, only py: {sorted(set(b) - set(a))})")
        for key in a:
            if key in b:
                check(same(a[key], b[key]), f"service {a['name']}.{key}: {a[key]} == {b[key]}")

    # Job types (format 1.4). stats_at(): loop i at step k: parse k*100+i ns
    # and k entries, work k*200 ns and 2k, other the rest of busy_ns.
    loop1 = doc["processes"][0]["loops"][1]
    check(loop1["jobs"]["parse"] == {"busy_ns": 1001, "count": 10}
          and loop1["jobs"]["work"] == {"busy_ns": 2000, "count": 20},
          f"a loop's job types: {loop1['jobs']}")
    check(sum(j["busy_ns"] for j in loop1["jobs"].values()) == loop1["busy_ns"],
          "a loop's job types add up to its busy time")
    check(alpha["jobs"]["parse"] == {"busy_ns": 4 * 1000 + 6 + 2 * 2000 + 1,
                                     "count": 4 * 10 + 2 * 20},
          f"a service's job types, summed by name: {alpha['jobs']['parse']}")
    check(list(alpha["jobs"]) == ["other", "parse", "work"], "other first, then by name")

    # Compatibility: the reader of format 1.3 (frozen in tests/shm/compat)
    # reads this 1.4 file, figures and services as the new one reads them;
    # the new readers read a file written at 1.3.
    compat = os.path.join(os.path.dirname(os.path.abspath(reader_py)), "..", "tests", "shm",
                          "compat")
    old = run(sys.executable, os.path.join(compat, "shm_reader_1_3.py"), f"--shm={path}")
    check(old.returncode == 0, f"the 1.3 reader reads a 1.4 file ({old.stderr.strip()[-200:]})")
    olddoc = json.loads(old.stdout)
    for a, b in zip(olddoc["services"], pydoc["services"]):
        shared = [k for k in a if k in b]
        check(len(shared) >= 20 and all(same(a[k], b[k]) for k in shared),
              f"service {a['name']}: the 1.3 reader's {len(shared)} figures match the new one's")
    old_loop = olddoc["processes"][0]["loops"][1]
    check(all(old_loop[k] == loop1[k] for k in ("busy_ns", "handlers", "registrations_total")),
          "the 1.3 reader's loop figures match")
    for tool_args in ([top, "--once", "--format=json"], [sys.executable, reader_py]):
        r = run(*tool_args, f"--shm={os.path.join(compat, 'format-1.3.bin')}")
        d = json.loads(r.stdout) if r.returncode == 0 else {}
        check(d.get("version") == "1.3" and len(d.get("processes", [])) == 3
              and d["processes"][1]["loops"][1]["busy_ns"] == 20 * 1000 + 1
              and all(not l["jobs"] for l in d["processes"][1]["loops"]),
              f"{os.path.basename(tool_args[-1] if 'py' in tool_args[-1] else tool_args[0])} "
              f"reads a 1.3 file, without job types ({r.stderr.strip()})")

    r = run(top, f"--shm={path}", "--once", "--format=prometheus")
    check(r.returncode == 0, "loopscale-top --format prometheus exits 0")
    check('loopscale_service_job_busy_seconds_total{service="alpha",job="work"}' in r.stdout
          and 'loopscale_loop_jobs_total{service="alpha",pid=' in r.stdout,
          "job types by service and loop, with a job label")
    check("loopscale_loop_utilization_ratio{service=\"alpha\"" in r.stdout,
          "per-loop utilization with labels")
    # stats_at(): registrations_total k+i+4, moves_in k+2 per loop; the
    # connections alpha took are sum(i+2) over a1's four loops and a2's two.
    check('loopscale_service_connections_total{service="alpha"} 19\n' in r.stdout,
          "per service: connections taken = registrations less moves in")
    check('loopscale_service_connections_active{service="alpha"} 7\n' in r.stdout,
          "per service: connections open")
    check('loopscale_pool_scale_events_total{service="beta",pid=' in r.stdout
          and 'direction="down"} 15\n' in r.stdout, "scale events by direction")
    promtool = run("promtool", "check", "metrics", input=r.stdout)
    check(promtool.returncode == 0,
          f"promtool check metrics accepts it ({promtool.stdout.strip()} {promtool.stderr.strip()})")

    # node_exporter's textfile mode: the file replaced whole at each refresh.
    with tempfile.TemporaryDirectory() as out_dir:
        prom = os.path.join(out_dir, "loopscale.prom")
        r = run(top, f"--shm={path}", "--once", "--format=prometheus", f"--output={prom}")
        check(r.returncode == 0 and r.stdout == "", f"--output exits 0, prints nothing ({r.stderr.strip()})")
        with open(prom) as f:
            written = f.read()
        check("loopscale_loop_utilization_ratio{service=\"alpha\"" in written,
              "--output wrote the Prometheus text")
        check(os.stat(prom).st_mode & 0o777 == 0o644, "--output's file is mode 0644")
        check(os.listdir(out_dir) == ["loopscale.prom"], "no temporary file left behind")
        first = os.stat(prom).st_ino
        refresher = subprocess.Popen([top, f"--shm={path}", "--format=prometheus",
                                      "--interval=20ms", f"--output={prom}"])
        try:
            deadline = time.monotonic() + 30
            while os.stat(prom).st_ino == first and time.monotonic() < deadline:
                time.sleep(0.01)  # poll interval, the condition has a deadline
            check(os.stat(prom).st_ino != first, "refreshes replace the file (a new inode)")
        finally:
            refresher.terminate()
            refresher.wait(timeout=30)
        check(refresher.returncode == 0, "SIGTERM stops the refreshing tool with status 0")
        check(all(not n.startswith("loopscale.prom.") for n in os.listdir(out_dir)),
              "no temporary file left after refreshes")
        r = run(top, f"--shm={path}", "--once", f"--output={out_dir}/missing/x.prom")
        check(r.returncode == 1 and f"{out_dir}/missing/x.prom" in r.stderr
              and "temporary file" in r.stderr, f"an unwritable --output is named ({r.stderr.strip()})")
        r = run(top, f"--shm={path}", "--once", f"--output={out_dir}")
        check(r.returncode == 1 and "rename" in r.stderr and os.listdir(out_dir) == ["loopscale.prom"],
              f"--output a directory: refused, nothing left ({r.stderr.strip()})")

    r = run(top, f"--shm={path}", "--once")
    check(r.returncode == 0 and "alpha" in r.stdout and "suspended" in r.stdout,
          "the table view lists services and loop states")
    check(r.stdout.count("busy with:") == 2 and "work 20.0% (160)" in r.stdout,
          "the table shows each service's job types")
    r = run(top, f"--shm={path}", "--once", "--jobs")
    check(r.stdout.count("busy with:") == 2 + 9, "--jobs adds each loop's")

    # Whoever can write the file can forge its figures: both readers say so
    # on stderr when anyone can, and still read.
    check(os.stat(path).st_mode & 0o002 == 0, "the fixture's file is not world-writable")
    r = run(top, f"--shm={path}", "--once", "--format=json")
    check("warning" not in r.stderr, f"no warning on a private file ({r.stderr.strip()})")
    os.chmod(path, 0o666)
    r = run(top, f"--shm={path}", "--once", "--format=json")
    check(r.returncode == 0 and f"warning: {path} is writable by any user (mode 0666)" in r.stderr
          and json.loads(r.stdout)["processes"], f"loopscale-top warns and reads ({r.stderr.strip()})")
    py = run(sys.executable, reader_py, f"--shm={path}")
    check(py.returncode == 0 and f"warning: {path} is writable by any user (mode 0666)" in py.stderr,
          f"shm_reader.py warns and reads ({py.stderr.strip()})")
    os.chmod(path, 0o600)

    r = run(top, f"--shm={path}", "--once", "--format=xml")
    check(r.returncode == 2 and "--format=xml" in r.stderr, "a bad --format is named")
    r = run(top, f"--shm={path}-missing", "--once")
    check(r.returncode == 1 and f"{path}-missing" in r.stderr, "a missing file is named")

    # A file grown to 8 GiB (sparse): the readers read what its header says
    # is in use, not its size (loopscale-top used to copy it whole, twice,
    # and died of bad_alloc). Measured in a child of its own, whose peak RSS
    # is all loopscale-top's.
    with tempfile.TemporaryDirectory(dir="/dev/shm") as big_dir:
        big = os.path.join(big_dir, "big")
        with open(path, "rb") as src, open(big, "wb") as dst:
            dst.write(src.read())
        os.truncate(big, 8 << 30)
        measure = ("import resource, subprocess, sys; "
                   "r = subprocess.run(sys.argv[1:], capture_output=True); "
                   "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        out = run(sys.executable, "-c", measure, top, f"--shm={big}", "--once", "--format=json")
        code, rss_kib = (int(x) for x in out.stdout.split())
        if os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"):
            # A sanitizer's shadow memory is most of the RSS there.
            check(code == 0, f"loopscale-top reads an 8 GiB sparse metrics file (exit {code}; "
                  f"its RSS is checked in the unsanitized build)")
        else:
            check(code == 0 and rss_kib < 50 * 1024,
                  f"loopscale-top reads an 8 GiB sparse metrics file in {rss_kib / 1024:.1f} MiB "
                  f"(limit 50; exit {code})")

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = run(top, f"--shm={path}", "--once", "--format=json")
    doc = json.loads(r.stdout)
    check(all(p["stale"] for p in doc["processes"]) and doc["services"] == [],
          "a killed publisher's pools are stale and out of the services")
    r = run(top, f"--shm={path}", "--reclaim_stale")
    check(r.returncode == 0 and "freed 3" in r.stdout, f"--reclaim_stale: {r.stdout.strip()}")
    doc = json.loads(run(top, f"--shm={path}", "--once", "--format=json").stdout)
    check(doc["processes"] == [], "nothing left after reclaiming")

    # A refreshing loopscale-top outlives the servers it watches: the file
    # deleted, then made afresh by a new server, is followed.
    path2 = f"{path}-second"
    first_server = subprocess.Popen([fixture, path2, "gamma:g:2:10"],
                                    stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    second_server = None
    with tempfile.TemporaryDirectory() as out_dir:
        out = os.path.join(out_dir, "top.json")
        watcher = None
        try:
            first_server.stdout.readline()

            def shows(name):
                def seen():
                    try:
                        with open(out) as f:
                            text = f.read()
                        return f'"name": "{name}"' in text or f'"name":"{name}"' in text
                    except OSError:
                        return False
                return seen
            watcher = subprocess.Popen([top, f"--shm={path2}", "--format=json", "--interval=20ms",
                                        f"--output={out}"], stderr=subprocess.PIPE, text=True)
            check(eventually(shows("gamma")), "a refreshing loopscale-top shows the first server")
            first_server.kill()
            first_server.wait()
            os.unlink(path2)
            second_server = subprocess.Popen([fixture, path2, "delta:d:2:10"],
                                             stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                             text=True)
            second_server.stdout.readline()
            check(eventually(shows("delta")),
                  "the file deleted and made afresh by a new server: it follows the new file")
            check(watcher.poll() is None, "and it is still running")
        finally:
            if watcher is not None:
                watcher.terminate()
                watcher.wait(timeout=30)
            for p_ in (first_server, second_server):
                if p_ is not None and p_.poll() is None:
                    p_.kill()
                    p_.wait()
            if os.path.exists(path2):
                os.unlink(path2)

    with tempfile.NamedTemporaryFile(dir="/dev/shm", delete=False) as bad:
        bad.write(b"GARBAGE!" + b"\0" * 200)
    for tool_args in ([top, f"--shm={bad.name}", "--once"],
                      [sys.executable, reader_py, f"--shm={bad.name}"]):
        r = run(*tool_args)
        check(r.returncode == 1 and "bad magic" in r.stderr,
              f"{os.path.basename(tool_args[-2] if 'py' in tool_args[-2] else tool_args[0])}: "
              f"bad magic reported ({r.stderr.strip()})")
    os.unlink(bad.name)
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if os.path.exists(path):
        os.unlink(path)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
