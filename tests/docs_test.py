#!/usr/bin/env python3
"""Docs that stay true: every relative link in the repository's Markdown
files leads to a file that exists, and every place that states the current
shared-memory format names the version in include/loopscale/shm/layout.hpp
(kVersionMajor.kVersionMinor). Then shows that the checks can fail: a copy
with a broken link and a copy with a stale version must be refused.

usage: docs_test.py SOURCE_ROOT"""
import os
import re
import shutil
import sys
import tempfile

SKIP_DIRS = {".git", "node_modules", "subprojects"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# Where the current format is stated: (file, pattern whose group 1 is X.Y).
VERSION_SITES = [
    ("include/loopscale/shm/layout.hpp", r"The shared-memory metrics file, version (\d+\.\d+)"),
    ("docs/shm-format.md", r"^# The loopscale shared-memory metrics file, version (\d+\.\d+)"),
    ("README.md", r"done \(format (\d+\.\d+)\)"),
    ("docs/operations.md", r"loopscale-top  \S+  format (\d+\.\d+)"),
]


def markdown_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames
                       if d not in SKIP_DIRS and not d.startswith("build")]
        for name in filenames:
            if name.endswith(".md"):
                yield os.path.join(dirpath, name)


def broken_links(root):
    """Relative links whose file is missing: (file, line, target)."""
    out = []
    for path in markdown_files(root):
        in_code = False
        for number, line in enumerate(open(path, encoding="utf-8"), 1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
            if in_code:
                continue
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # a URL, a mail address, an anchor in the page
                file_part = target.split("#", 1)[0]
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if not os.path.exists(resolved):
                    out.append((os.path.relpath(path, root), number, target))
    return out


def format_version(root):
    text = open(os.path.join(root, "include/loopscale/shm/layout.hpp")).read()
    major = re.search(r"kVersionMajor = (\d+);", text).group(1)
    minor = re.search(r"kVersionMinor = (\d+);", text).group(1)
    return f"{major}.{minor}"


def stale_versions(root):
    """Places that state the current format with another version, or no
    longer state it: (file, what was found)."""
    want = format_version(root)
    out = []
    for rel, pattern in VERSION_SITES:
        text = open(os.path.join(root, rel), encoding="utf-8").read()
        found = re.findall(pattern, text, re.M)
        if not found:
            out.append((rel, f"no statement of the format matching /{pattern}/"))
        out += [(rel, f"format {v}, but layout.hpp says {want}") for v in found if v != want]
    return out


def check(root):
    problems = [f"{f}:{n}: broken link ({t})" for f, n, t in broken_links(root)]
    problems += [f"{f}: {what}" for f, what in stale_versions(root)]
    return problems


def copy_tree(root, into):
    """A copy of the tree at `into` in which the Markdown files and the files
    stating the format are real copies (to be edited) and everything else is
    a symbolic link to the original (for the links to resolve)."""
    edited = {rel for rel, _ in VERSION_SITES}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        os.makedirs(os.path.join(into, rel_dir), exist_ok=True)
        for d in list(dirnames):
            if d in SKIP_DIRS or d.startswith("build"):
                dirnames.remove(d)
                os.symlink(os.path.join(dirpath, d), os.path.join(into, rel_dir, d))
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            src, dest = os.path.join(dirpath, name), os.path.join(into, rel)
            if name.endswith(".md") or rel in edited:
                shutil.copy(src, dest)
            else:
                os.symlink(src, dest)


def must_fail(root, name, edit):
    """A copy of the docs with `edit` applied must not pass."""
    with tempfile.TemporaryDirectory() as parent:
        tmp = os.path.join(parent, "copy")
        copy_tree(root, tmp)
        if check(tmp):
            sys.exit(f"docs_test: the unedited copy already fails: {check(tmp)}")
        edit(tmp)
        if not check(tmp):
            sys.exit(f"docs_test: a copy with {name} passed the checks")
        print(f"ok: a copy with {name} is refused: {check(tmp)[0]}")


def append(rel, text):
    def edit(tmp):
        with open(os.path.join(tmp, rel), "a", encoding="utf-8") as f:
            f.write(text)
    return edit


def replace_version(tmp):
    path = os.path.join(tmp, "docs/shm-format.md")
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"(metrics file, version )\d+\.\d+", r"\g<1>0.9", text, count=1)
    open(path, "w", encoding="utf-8").write(text)


def main():
    root = os.path.abspath(sys.argv[1])
    problems = check(root)
    for p in problems:
        print("docs_test:", p)
    if problems:
        sys.exit(1)
    print(f"ok: every relative link in {sum(1 for _ in markdown_files(root))} Markdown files "
          f"resolves; the format is stated as {format_version(root)} everywhere")
    must_fail(root, "a broken link", append("docs/operations.md", "\nSee [gone](gone.md).\n"))
    must_fail(root, "a stale format version", replace_version)


if __name__ == "__main__":
    main()
