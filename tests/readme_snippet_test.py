#!/usr/bin/env python3
"""The README's "Build a server on the pool" code block must be exactly
examples/minimal_server/main.cpp, which the build compiles: so the README's
example always compiles. usage: readme_snippet_test.py README EXAMPLE"""
import re
import sys

readme, example = (open(p).read() for p in sys.argv[1:3])
section = readme.split("## Build a server on the pool", 1)
if len(section) != 2:
    sys.exit("README has no '## Build a server on the pool' section")
m = re.search(r"```cpp\n(.*?)```", section[1], re.S)
if not m:
    sys.exit("no ```cpp block in the section")
if m.group(1) != example:
    sys.exit("the README's code differs from examples/minimal_server/main.cpp")
print("ok: the README's server example is examples/minimal_server/main.cpp")
