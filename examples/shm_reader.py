#!/usr/bin/env python3
"""Reads a loopscale shared-memory metrics file with the standard library only.

It knows the fixed header and the four fixed words of a segment (see
docs/shm-format.md); every other field is found through the file's schema
table, by name, so the figures it prints are what the schema says they are.

    examples/shm_reader.py [--shm /dev/shm/loopscale]

prints one JSON document {"services": [...], "processes": [...]} whose
"services" part matches `loopscale-top --once --format json`. Job types
(format 1.4): each loop's and service's "jobs", {name: {"busy_ns", "count"}},
added up by name (slots are per process).
Exit status: 0, or 1 with a message naming the problem for a bad file.
"""

import argparse
import json
import os
import re
import stat
import struct
import sys

MAGIC = b"LOOPSCAL"
BYTE_ORDER_MARK = 0x0102030405060708
HEADER = struct.Struct("=8sIIQQQQQQQQQ")  # the first 88 bytes of the header
SCHEMA_ENTRY = struct.Struct("=32sIIII8sII")
RECORD_SEGMENT, RECORD_LOOP = 1, 2
TYPE_U64, TYPE_F64, TYPE_STRING = 1, 2, 3
AGG_NONE, AGG_SUM, AGG_MAX, AGG_MEAN, AGG_MIN = 0, 1, 2, 3, 4
# The fixed words of a segment, outside the seqlock.
OWNER, SEQ, SIZE, LOOP_CAPACITY = 0, 8, 16, 24
U64_MASK = (1 << 64) - 1
MAX_ATTEMPTS = 10000
JOB_FIELD = re.compile(r"job(\d+)_(name|busy_ns|count)$")
STATES = ["active", "draining", "suspending", "suspended", "stopped"]


class BadFile(Exception):
    pass


def text(raw):
    """NUL-terminated text; bytes outside printable ASCII become '?'."""
    raw = raw.split(b"\0", 1)[0]
    return "".join(chr(b) if 0x20 <= b <= 0x7E else "?" for b in raw)


def u64(buf, offset):
    return struct.unpack_from("=Q", buf, offset)[0]


class File:
    def __init__(self, path):
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            self.fd = os.open(path, flags)
        except OSError as e:
            raise BadFile(f"{path}: {e.strerror}") from None
        st = os.fstat(self.fd)
        self.size = st.st_size
        # Whoever can write the file can forge its figures: say so, read on.
        why = []
        if st.st_uid not in (os.geteuid(), 0):
            why.append(f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})")
        if st.st_mode & stat.S_IWOTH:
            why.append(f"is writable by any user (mode 0{st.st_mode & 0o7777:o})")
        if why:
            print(f"shm_reader.py: warning: {path} {' and '.join(why)}: whoever can "
                  f"write it can forge its figures", file=sys.stderr)

    def read(self, offset, size):
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise BadFile(f"truncated: cannot read {size} bytes at {offset}")
        return data

    def read_header(self):
        if self.size < HEADER.size:
            raise BadFile(f"truncated: {self.size} bytes, the header needs 128")
        (magic, major, minor, byte_order, header_size, schema_offset,
         schema_count, entry_size, segment_header_size, loop_slot_size,
         used_bytes, _segments) = HEADER.unpack(self.read(0, HEADER.size))
        if magic == b"\0" * 8:
            raise BadFile("not initialized yet (magic is zero)")
        if magic != MAGIC:
            raise BadFile(f"bad magic {magic!r}: not a loopscale metrics file")
        if byte_order != BYTE_ORDER_MARK:
            raise BadFile("written with another byte order")
        if major != 1:
            raise BadFile(f"unsupported version {major}.{minor}")
        if not (128 <= header_size <= self.size and header_size % 8 == 0):
            raise BadFile(f"header_size = {header_size} outside the file")
        if not (1 <= schema_count <= 1024 and SCHEMA_ENTRY.size <= entry_size
                and schema_offset >= 128
                and schema_offset + schema_count * entry_size <= header_size):
            raise BadFile("schema table does not fit in the header")
        if not (32 <= segment_header_size <= 1 << 20 and 8 <= loop_slot_size <= 1 << 20):
            raise BadFile("record sizes out of range")
        if not (header_size <= used_bytes <= self.size):
            raise BadFile(f"truncated: used_bytes = {used_bytes}, file has {self.size}")
        self.major, self.minor = major, minor
        self.header_size = header_size
        self.segment_header_size = segment_header_size
        self.loop_slot_size = loop_slot_size
        self.used_bytes = used_bytes
        self.schema = []
        for i in range(schema_count):
            (name, record, ftype, offset, size, unit, agg, _) = SCHEMA_ENTRY.unpack(
                self.read(schema_offset + i * entry_size, SCHEMA_ENTRY.size))
            limit = segment_header_size if record == RECORD_SEGMENT else loop_slot_size
            if record not in (RECORD_SEGMENT, RECORD_LOOP) or ftype not in (1, 2, 3) \
                    or offset % 8 or offset + size > limit or agg > 4:
                raise BadFile(f"schema entry {i} is invalid")
            self.schema.append({"name": text(name), "record": record, "type": ftype,
                                "offset": offset, "size": size, "unit": text(unit),
                                "aggregation": agg})

    def field(self, record, name):
        for f in self.schema:
            if f["record"] == record and f["name"] == name:
                return f
        raise BadFile(f"the schema lacks the field {name!r}")

    def read_segment(self, offset, size):
        """A copy of the segment taken while its seqlock stood still, or None."""
        for _ in range(MAX_ATTEMPTS):
            before = u64(self.read(offset + SEQ, 8), 0)
            if before % 2:
                continue
            body = self.read(offset, size)
            if u64(self.read(offset + SEQ, 8), 0) == before:
                return body
        return None


def value(buf, base, f):
    if f["type"] == TYPE_F64:
        return struct.unpack_from("=d", buf, base + f["offset"])[0]
    if f["type"] == TYPE_U64:
        return u64(buf, base + f["offset"])
    return text(buf[base + f["offset"]:base + f["offset"] + f["size"]])


def stale_reason(pid, start_time):
    if not 0 < pid <= 4194304:
        return f"invalid pid {pid}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} is gone"
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return f"process {pid} has exited (zombie)"
    if int(fields[19]) != start_time:
        return f"pid {pid} was reused"
    return ""


def snapshot(path):
    f = File(path)
    f.read_header()
    numeric = lambda record: [s for s in f.schema
                              if s["record"] == record and s["type"] != TYPE_STRING
                              and not JOB_FIELD.match(s["name"])]
    # Job type slots: {slot: {"name": field, "busy_ns": field, "count": field}}.
    slots = {}
    for s in f.schema:
        m = JOB_FIELD.match(s["name"])
        if m:
            slots.setdefault(int(m.group(1)), {})[m.group(2)] = s
    slots = {k: v for k, v in slots.items() if len(v) == 3}
    seg_fields, loop_fields = numeric(RECORD_SEGMENT), numeric(RECORD_LOOP)
    processes = []
    offset = f.header_size
    while offset < f.used_bytes:
        fixed = f.read(offset, 32)
        owner, size, capacity = u64(fixed, OWNER), u64(fixed, SIZE), u64(fixed, LOOP_CAPACITY)
        if size < f.segment_header_size or size % 8 or offset + size > f.used_bytes:
            raise BadFile(f"segment at offset {offset}: size = {size}")
        if capacity * f.loop_slot_size > size - f.segment_header_size:
            raise BadFile(f"segment at offset {offset}: loop_capacity = {capacity}")
        seg_offset, offset = offset, offset + size
        if owner == 0:
            continue
        body = f.read_segment(seg_offset, size)
        pid = owner & 0xFFFFFFFF
        if body is None:
            processes.append({"pid": pid, "consistent": False, "stale": True})
            continue
        if value(body, 0, f.field(RECORD_SEGMENT, "generation")) != owner >> 32:
            continue  # being claimed or released
        p = {"pid": pid, "consistent": True,
             "service": value(body, 0, f.field(RECORD_SEGMENT, "service")),
             "pool": value(body, 0, f.field(RECORD_SEGMENT, "pool")),
             "figures": [value(body, 0, s) for s in seg_fields], "loops": []}
        loops = value(body, 0, f.field(RECORD_SEGMENT, "loops"))
        if loops > capacity:
            raise BadFile(f"segment at offset {seg_offset}: loops = {loops} exceeds capacity")
        names = {k: value(body, 0, v["name"]) for k, v in sorted(slots.items())}
        names = {k: n for k, n in names.items() if n}
        p["jobs"] = []
        for i in range(loops):
            base = f.segment_header_size + i * f.loop_slot_size
            p["loops"].append([value(body, base, s) for s in loop_fields])
            p["jobs"].append({n: {"busy_ns": value(body, base, slots[k]["busy_ns"]),
                                  "count": value(body, base, slots[k]["count"])}
                              for k, n in names.items()})
        reason = stale_reason(pid, value(body, 0, f.field(RECORD_SEGMENT, "start_time")))
        p["stale"], p["stale_reason"] = bool(reason), reason
        processes.append(p)
    return f, seg_fields, loop_fields, processes


def aggregate(fields, rows):
    out = {}
    for k, s in enumerate(fields):
        rule = s["aggregation"]
        if rule == AGG_NONE:
            continue
        values = [row[k] for row in rows]
        if rule == AGG_SUM:
            v = sum(values)
            v = v & U64_MASK if s["type"] == TYPE_U64 else v
        elif rule == AGG_MAX:
            v = max(values) if values else 0
        elif rule == AGG_MIN:
            v = min(values) if values else 0
        else:  # mean
            v = sum(values) / len(values) if values else 0.0
        out[s["name"]] = v
    return out


def services(seg_fields, loop_fields, processes):
    groups = {}
    for p in processes:
        if p["stale"] or not p["consistent"]:
            continue
        g = groups.setdefault(p["service"],
                              {"pids": set(), "pools": [], "loops": [], "jobs": {}})
        g["pids"].add(p["pid"])
        g["pools"].append(p["figures"])
        g["loops"].extend(p["loops"])
        for loop_jobs in p["jobs"]:
            for name, j in loop_jobs.items():
                total = g["jobs"].setdefault(name, {"busy_ns": 0, "count": 0})
                total["busy_ns"] += j["busy_ns"]
                total["count"] += j["count"]
    out = []
    for name in sorted(groups):
        g = groups[name]
        s = {"name": name, "processes": len(g["pids"]), "pools": len(g["pools"])}
        s.update(aggregate(seg_fields, g["pools"]))
        s.update(aggregate(loop_fields, g["loops"]))
        # "other" first, then by name, as loopscale-top.
        s["jobs"] = {n: g["jobs"][n] for n in sorted(g["jobs"], key=lambda n: (n != "other", n))}
        out.append(s)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shm", default="/dev/shm/loopscale")
    args = parser.parse_args()
    try:
        f, seg_fields, loop_fields, processes = snapshot(args.shm)
    except BadFile as e:
        print(f"shm_reader.py: {args.shm}: {e}", file=sys.stderr)
        return 1
    doc = {"version": f"{f.major}.{f.minor}",
           "services": services(seg_fields, loop_fields, processes),
           "processes": [{"pid": p["pid"], "service": p.get("service"),
                          "pool": p.get("pool"), "stale": p["stale"],
                          "consistent": p["consistent"],
                          "loops": [dict(zip([s["name"] for s in loop_fields], row),
                                         jobs=jobs)
                                    for row, jobs in zip(p.get("loops", []),
                                                         p.get("jobs", []))]}
                         for p in processes]}
    json.dump(doc, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
