"""server_bench --only overload: open-loop load past the pool's capacity.

Each run starts the server, sends 0.8x of the capacity for WARM_S seconds,
then 1.5x, 2x or 4x for OVER_S seconds, then 0.5x for AFTER_S seconds
(loadgen --mode open, a new connection whenever no free one is left, as
clients arriving on their own would). Handlers that sleep (/work?ms=10, the
demo's 4 loops: 400 requests/s) and that spin (/work?ms=10&spin=1, one loop
per server CPU: 100 requests/s each), each against http_server with
examples/config/demo.toml as shipped (overload protection on), the same with
--overload=off, and --plain at the same thread count: the last two show the
unbounded queueing that overload protection replaces, side by side.

Per run, from loadgen's per-request rows: the p99 of the served requests of
the warm phase's last 3 s (the 0.8x reference), and of the overload phase's
served (admitted) and refused (503) requests, the goodput (served per
second), and how long after the overload phase a request was still refused.
Then one step from idle to 0.8x (the pool at one loop; the load it absorbs by
growing), which must refuse nothing.

Targets, overload on, at 2x and 4x: goodput >= 0.9 of the capacity, admitted
p99 <= 3x the 0.8x p99, 503s' p99 <= the admitted p99, shedding stops within
two windows of the overload's end; the step from idle refuses nothing.
"""
import csv
import os
import re
import statistics
import subprocess
import tempfile

WARM_S, OVER_S, AFTER_S = 5, 20, 5
LEVELS = (1.5, 2.0, 4.0)
IMPLS = ("on", "off", "plain")


def p99(values):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def run_once(ctx, handler, loops, impl, phases, duration_s, idle_first=False):
    """Runs loadgen against a fresh server; returns its rows (sent s,
    latency ms, served)."""
    cfg_path, shm = ctx.configs[handler][0], ctx.configs[handler][1]
    cmd = [ctx.server, "--port=0"]
    if impl == "plain":
        cmd += ["--plain", f"--threads={loops}"]
    else:
        cmd += [f"--config={cfg_path}", f"--overload={impl}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=ctx.pinned(ctx.server_cpus))
    port = int(re.search(r":(\d+) ", proc.stdout.readline()).group(1))
    lat = tempfile.NamedTemporaryFile(suffix=".csv", delete=False).name
    try:
        if idle_first:
            cfg = ctx.configs[handler]
            ctx.wait_idle(cfg[1], cfg[5], loops, proc)
        path = "/work?ms=10" + ("&spin=1" if handler == "spin" else "")
        subprocess.run([ctx.loadgen, f"--url=http://127.0.0.1:{port}{path}", "--mode=open",
                        f"--phases={phases}", f"--duration={duration_s}s", f"--latencies={lat}"],
                       stdout=subprocess.DEVNULL, check=False,
                       preexec_fn=ctx.pinned(ctx.client_cpus))
        rows = [(float(r["sent_ms"]) / 1000, float(r["latency_ms"]), r["served"] == "1")
                for r in csv.DictReader(open(lat))]
    finally:
        proc.terminate()
        proc.wait()
        os.unlink(lat)
        if os.path.exists(shm):
            os.unlink(shm)
    return rows


def measure(rows, capacity):
    over = [(t, l, s) for t, l, s in rows if WARM_S <= t < WARM_S + OVER_S]
    refused_after = [t for t, _, s in rows if t >= WARM_S + OVER_S and not s]
    # Goodput: served answers that completed during the overload phase.
    completed = sum(1 for t, l, s in rows if s and WARM_S <= t + l / 1000 < WARM_S + OVER_S)
    return {
        "warm_p99": p99([l for t, l, s in rows if WARM_S - 3 <= t < WARM_S and s]),
        "goodput": completed / OVER_S / capacity,
        "admitted_p99": p99([l for _, l, s in over if s]),
        "refused": sum(1 for _, _, s in over if not s),
        "refused_p99": p99([l for _, l, s in over if not s]),
        # Seconds after the overload's end that a request was still refused.
        "shed_after": (max(refused_after) - WARM_S - OVER_S) if refused_after else 0.0,
    }


def overload_case(ctx, levels=LEVELS, handler_names=("sleep", "spin"), impls=IMPLS):
    handlers = {h: n for h, n in {"sleep": 4, "spin": len(ctx.server_cpus)}.items()
                if h in handler_names}
    ctx.configs = {h: ctx.demo_config(max_loops=n) for h, n in handlers.items()}
    window = next(iter(ctx.configs.values()))[2]
    print(f"\noverload: {WARM_S} s at 0.8x, {OVER_S} s at "
          f"{'/'.join(f'{lv:g}x' for lv in levels)}, {AFTER_S} s at 0.5x of capacity "
          f"({', '.join(f'{h}: {n} loop(s), {100 * n} rps' for h, n in handlers.items())}); "
          f"demo.toml (overload on), --overload=off, --plain")
    print(f"{'handler':<6} {'level':>5} {'impl':<6} {'p99 0.8x':>9} {'goodput':>8} "
          f"{'p99 admitted':>13} {'x 0.8x':>7} {'503s':>6} {'p99 503':>9} {'shed after':>10}")
    ok = True
    for handler, loops in handlers.items():
        capacity = 100 * loops
        results = {}
        for level in levels:
            phases = (f"0s:{0.8 * capacity:g}rps,{WARM_S}s:{level * capacity:g}rps,"
                      f"{WARM_S + OVER_S}s:{0.5 * capacity:g}rps")
            for impl in impls:
                rows = run_once(ctx, handler, loops, impl, phases, WARM_S + OVER_S + AFTER_S)
                results[(level, impl)] = measure(rows, capacity)
        reference = statistics.median(r["warm_p99"] for (_, impl), r in results.items()
                                      if impl == "on")
        for (level, impl), r in results.items():
            ratio = r["admitted_p99"] / reference
            print(f"{handler:<6} {level:>4.1f}x {impl:<6} {r['warm_p99']:7.1f}ms "
                  f"{r['goodput']:8.2f} {r['admitted_p99']:11.1f}ms {ratio:7.2f} "
                  f"{r['refused']:6d} {r['refused_p99']:7.1f}ms {r['shed_after']:9.2f}s",
                  flush=True)
            if impl == "on" and level >= 2:
                met = (r["goodput"] >= 0.9 and ratio <= 3 and
                       not r["refused_p99"] > r["admitted_p99"] and
                       r["shed_after"] <= 2 * window)
                ok = ok and met
        step = run_once(ctx, handler, loops, "on", f"0s:{0.8 * capacity:g}rps", 8,
                        idle_first=True)
        refused = sum(1 for _, _, s in step if not s)
        print(f"{handler:<6} idle -> 0.8x, overload on: {refused} refused of {len(step)}")
        ok = ok and refused == 0
    for cfg in ctx.configs.values():
        os.unlink(cfg[0])
    print(f"overload targets (on, 2x and 4x: goodput >= 0.9, admitted p99 <= 3x the 0.8x "
          f"p99, 503 p99 <= admitted p99, shedding stops within {2 * window:g} s; the step "
          f"from idle refuses nothing):", "met" if ok else "NOT met")
    return ok
