#!/usr/bin/env python3
"""Prints loopscale/plain ratios from a Google Benchmark JSON report.

Benchmarks are named CASE/plain and CASE/loopscale (with Google Benchmark's
suffixes). For each case it prints two ratios of real times over the
repetitions, both sides taking the same statistic:

  median  the typical run;
  min     the fastest run. Noise on a shared machine only ever adds time, so
          the fastest of interleaved repetitions is the closest to what the
          code itself costs (the advice of Python's timeit, for one).

Latency cases print their p50/p99 counters (medians over repetitions). A
report with aggregates only (no per-repetition runs) gives medians for both.
"""
import json
import statistics
import sys


def fmt(ns: float) -> str:
    return f"{ns / 1e3:.1f}us" if ns >= 1e3 else f"{ns:.2f}ns"


def main(path: str) -> None:
    report = json.load(open(path))
    # Benchmarks with a time_unit other than ns are converted to ns.
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    runs, aggregate_medians, counters = {}, {}, {}
    for b in report["benchmarks"]:
        name = b["run_name"].split("/")
        key = (name[0], name[1] if len(name) > 1 else "")
        real = b["real_time"] * scale[b.get("time_unit", "ns")]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                aggregate_medians[key] = real
            continue
        runs.setdefault(key, []).append(real)
        if "p50_us" in b:
            counters.setdefault(key, []).append((b["p50_us"], b["p99_us"]))
    stats = {k: (statistics.median(v), min(v)) for k, v in runs.items()}
    for k, med in aggregate_medians.items():
        stats.setdefault(k, (med, med))

    print(f"{'case':<14} {'plain':>11} {'loopscale':>11} {'median':>7}"
          f" {'min':>7}   (times are medians; ratios loopscale/plain)")
    for (case, impl), (med, fastest) in sorted(stats.items()):
        if impl != "plain" or (case, "loopscale") not in stats \
                or (case, impl) in counters:
            continue
        ours_med, ours_min = stats[(case, "loopscale")]
        print(f"{case:<14} {fmt(med):>11} {fmt(ours_med):>11}"
              f" {ours_med / med:>7.3f} {ours_min / fastest:>7.3f}")
    for (case, impl), (med, _) in sorted(stats.items()):
        if impl != "plain" and (case, "plain") not in stats \
                and (case, impl) not in counters:
            print(f"{case + '/' + impl:<24} {fmt(med):>12}")
    for (case, impl), samples in sorted(counters.items()):
        p50 = statistics.median(s[0] for s in samples)
        p99 = statistics.median(s[1] for s in samples)
        print(f"{case + '/' + impl:<24} p50 {p50:8.1f} us   p99 {p99:8.1f} us")


if __name__ == "__main__":
    main(sys.argv[1])
