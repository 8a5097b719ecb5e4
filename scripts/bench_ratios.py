#!/usr/bin/env python3
"""Prints time ratios against plain Asio from a Google Benchmark JSON report.

Benchmarks are named CASE/plain, CASE/loopscale and possibly CASE/<variant>
(with Google Benchmark's suffixes). For each CASE/x other than plain it prints
two ratios of CASE/x's real times to CASE/plain's over the repetitions, both
sides taking the same statistic:

  median  the typical run;
  min     the fastest run. Noise on a shared machine only ever adds time, so
          the fastest of interleaved repetitions is the closest to what the
          code itself costs (the advice of Python's timeit, for one).

Latency cases print their p50/p99 counters (medians over repetitions), and a
handlers_per_block counter (how many handlers the loop thread ran per time it
blocked) is printed per variant. A report with aggregates only (no
per-repetition runs) gives medians for both.
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
    runs, aggregate_medians, counters, per_block = {}, {}, {}, {}
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
        if "handlers_per_block" in b:
            per_block.setdefault(key, []).append(b["handlers_per_block"])
    stats = {k: (statistics.median(v), min(v)) for k, v in runs.items()}
    for k, med in aggregate_medians.items():
        stats.setdefault(k, (med, med))

    # Every CASE/x is compared with CASE/plain: loopscale first, then the
    # variants that take a gap apart (see the benchmark's header comment).
    def order(impl: str):
        return (impl != "loopscale", impl)

    print(f"{'case':<14} {'vs plain':<12} {'plain':>11} {'it':>11} {'median':>7}"
          f" {'min':>7}   (times are medians; ratios it/plain)")
    paired = set()
    for case in sorted({c for c, _ in stats}):
        if (case, "plain") not in stats:
            continue
        med, fastest = stats[(case, "plain")]
        for impl in sorted((i for c, i in stats if c == case and i != "plain"
                            and (c, i) not in counters), key=order):
            its_med, its_min = stats[(case, impl)]
            paired.update({(case, "plain"), (case, impl)})
            print(f"{case:<14} {impl:<12} {fmt(med):>11} {fmt(its_med):>11}"
                  f" {its_med / med:>7.3f} {its_min / fastest:>7.3f}")
    for (case, impl), (med, _) in sorted(stats.items()):
        if (case, impl) not in paired and (case, impl) not in counters:
            print(f"{case + '/' + impl:<24} {fmt(med):>12}")
    for (case, impl), samples in sorted(counters.items()):
        p50 = statistics.median(s[0] for s in samples)
        p99 = statistics.median(s[1] for s in samples)
        print(f"{case + '/' + impl:<24} p50 {p50:8.1f} us   p99 {p99:8.1f} us")
    for (case, impl), samples in sorted(per_block.items()):
        print(f"{case + '/' + impl:<24} {statistics.median(samples):8.1f} handlers"
              " per time the loop thread blocked")


if __name__ == "__main__":
    main(sys.argv[1])
