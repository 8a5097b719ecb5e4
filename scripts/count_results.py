#!/usr/bin/env python3
"""Counts test cases from a Meson test run: prints 'PASSED FAILED'.

Reads meson-logs/testlog.json (one record per test executable) and
meson-logs/testlog.junit.xml (one testcase per GoogleTest case). A gtest
executable counts its cases; an executable that failed without reporting a
failed case (a crash, a timeout, a sanitizer report at exit) counts as one
failure more, so nothing that went wrong is hidden.
"""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(build_dir: str) -> None:
    logs = Path(build_dir) / "meson-logs"
    cases = {}  # executable name -> (passed, failed)
    junit = logs / "testlog.junit.xml"
    if junit.exists():
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            name = suite.attrib.get("name", "")
            # "project.project:suite / test.GtestSuite" -> "project:suite / test"
            exe = name.split(".", 1)[-1].rsplit(".", 1)[0]
            passed, failed = cases.get(exe, (0, 0))
            for case in suite.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    failed += 1
                elif case.find("skipped") is None:
                    passed += 1
            cases[exe] = (passed, failed)
    total_passed = total_failed = 0
    for line in (logs / "testlog.json").read_text().splitlines():
        record = json.loads(line)
        ok = record["result"] in ("OK", "EXPECTEDFAIL", "SKIP")
        passed, failed = cases.get(record["name"], (0, 0))
        if passed == 0 and failed == 0:
            passed, failed = (1, 0) if ok else (0, 1)
        elif not ok and failed == 0:
            failed = 1
        total_passed += passed
        total_failed += failed
    print(total_passed, total_failed)


if __name__ == "__main__":
    main(sys.argv[1])
