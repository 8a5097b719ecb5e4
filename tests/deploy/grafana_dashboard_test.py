#!/usr/bin/env python3
"""deploy/grafana/loopscale.json: a dashboard Grafana can import, whose every
query is PromQL that parses and uses only metric families loopscale exports.

The structure is checked here; the queries by promtool, which parses each as
the expression of a recording rule (Grafana's variables replaced by values of
their kind). The checks are shown to catch mistakes: a copy with a query that
does not parse, and one with a panel that has lost its grid position, must
both be rejected.

usage: grafana_dashboard_test.py SOURCE_DIR
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile

source_dir = sys.argv[1]
path = os.path.join(source_dir, "deploy", "grafana", "loopscale.json")
REQUIRED_PANELS = ["Capacity used", "Active loops and max_loops", "Utilization per loop",
                   "Scheduling lag", "Scale events"]
# Every family a query may use: loopscale's (docs/operations.md) and no other.
known = set(re.findall(r"`(loopscale_[a-z_]+)`",
                       open(os.path.join(source_dir, "docs", "operations.md")).read()))


def variables(expr):
    """Grafana's variables, replaced by values of their kind."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
    return re.sub(r"\$\{?(\w+)\}?", "x", expr)


def structure_errors(dash):
    errors = []
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dash:
            errors.append(f"no {key}")
    ids = set()
    titles = []
    for p in dash.get("panels", []):
        title = p.get("title", "")
        titles.append(title)
        if p.get("id") in ids:
            errors.append(f"panel id {p.get('id')} twice")
        ids.add(p.get("id"))
        grid = p.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            errors.append(f"{title!r}: no gridPos")
        elif grid["x"] + grid["w"] > 24:
            errors.append(f"{title!r}: wider than the 24-column grid")
        if not p.get("type") or not p.get("targets"):
            errors.append(f"{title!r}: no type or no queries")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if len(set(refs)) != len(refs) or None in refs:
            errors.append(f"{title!r}: refIds missing or repeated")
        for t in p.get("targets", []):
            for family in re.findall(r"\b(loopscale_[a-z_]+?)(?:_bucket)?\b(?=[{\[\s)])",
                                     t.get("expr", "")):
                base = family[:-len("_bucket")] if family.endswith("_bucket") else family
                if base not in known and family not in known:
                    errors.append(f"{title!r}: {family} is not a loopscale family")
    for want in REQUIRED_PANELS:
        if not any(t.startswith(want) for t in titles):
            errors.append(f"no panel {want!r}")
    names = [v.get("name") for v in dash.get("templating", {}).get("list", [])]
    if "job" not in names or "datasource" not in names:
        errors.append(f"variables {names}: want datasource and job")
    return errors


def query_errors(dash):
    """Runs promtool over every query; returns its complaints."""
    exprs = [variables(t["expr"]) for p in dash.get("panels", []) for t in p.get("targets", [])]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(rules, f)  # JSON is YAML
    try:
        r = subprocess.run(["promtool", "check", "rules", f.name],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    return [] if r.returncode == 0 else [(r.stdout + r.stderr).strip()]


failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


dash = json.load(open(path))
errors = structure_errors(dash)
check(errors == [], f"the dashboard's structure ({errors})")
errors = query_errors(dash)
check(errors == [], f"promtool parses every query ({errors})")
count = sum(len(p["targets"]) for p in dash["panels"])
check(count >= 8, f"{count} queries over {len(dash['panels'])} panels")

broken = copy.deepcopy(dash)
broken["panels"][0]["targets"][0]["expr"] = "sum by (job) (rate(loopscale_loop_busy_seconds_total[1m])"
check(query_errors(broken) != [], "a query with an unclosed parenthesis is rejected")
broken = copy.deepcopy(dash)
del broken["panels"][2]["gridPos"]
check(structure_errors(broken) != [], "a panel without a grid position is rejected")
broken = copy.deepcopy(dash)
broken["panels"][1]["targets"][0]["expr"] = "sum(loopscale_pool_scale_ups_total)"
check(structure_errors(broken) != [], "a renamed family (scale_ups_total) is rejected")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
