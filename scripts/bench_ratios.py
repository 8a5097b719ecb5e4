#!/usr/bin/env python3
"""Prints loopscale/plain ratios from a Google Benchmark JSON report.

Benchmarks are named CASE/plain and CASE/loopscale (with Google Benchmark's
suffixes); the ratio of their median real times is printed per case, and the
p50/p99 counters of latency cases.
"""
import json
import sys


def fmt(ns: float) -> str:
    return f"{ns / 1e3:.1f}us" if ns >= 1e3 else f"{ns:.2f}ns"


def main(path: str) -> None:
    report = json.load(open(path))
    # Benchmarks with a time_unit other than ns are converted to ns.
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    for b in report["benchmarks"]:
        b["real_time"] *= scale[b.get("time_unit", "ns")]
    medians = {}
    counters = {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name") not in (None, "median"):
            continue
        name = b["run_name"].split("/")
        case, impl = name[0], name[1]
        if b.get("run_type") == "aggregate" or "aggregate_name" not in b:
            medians[(case, impl)] = b["real_time"]
            if "p50_us" in b:
                counters[(case, impl)] = (b["p50_us"], b["p99_us"])
    print(f"{'case':<14} {'plain':>12} {'loopscale':>12} {'ratio':>7}")
    for (case, impl), t in sorted(medians.items()):
        if impl != "plain" or (case, "loopscale") not in medians:
            continue
        if (case, "plain") in counters:
            continue
        ours = medians[(case, "loopscale")]
        print(f"{case:<14} {fmt(t):>12} {fmt(ours):>12} {ours/t:>7.3f}")
    for (case, impl), t in sorted(medians.items()):
        if impl == "loopscale" and (case, "plain") not in medians \
                and (case, impl) not in counters:
            print(f"{case + '/' + impl:<24} {fmt(t):>12}")
    for (case, impl), (p50, p99) in sorted(counters.items()):
        print(f"{case + '/' + impl:<24} p50 {p50:8.1f} us   p99 {p99:8.1f} us")


if __name__ == "__main__":
    main(sys.argv[1])
