#!/usr/bin/env python3
"""The log reader (common/obs_reader.c, through observe-slicer dump) on
damaged logs: every problem is one clear line naming the file and what is
wrong, and every valid record around the damage is still read."""
import os
import shutil
import struct
import subprocess

import obstest as T
from obstest import test

NETCLIENT = os.path.join(T.PROGS, "netclient")
HEADER = 4096
UNIT = 64


def _make_log(case, conns=5):
    port = T.httpd(case, size=100)
    logs = case.logdir()
    T.run([NETCLIENT, "--port", str(port), "--conns", str(conns)], logdir=logs)
    (name,) = [f for f in os.listdir(logs) if f.endswith(".olog")]
    return os.path.join(logs, name)


def _reserved(path):
    with open(path, "rb") as f:
        f.seek(24)
        return struct.unpack("<Q", f.read(8))[0]


def _dump(path):
    return subprocess.run([T.SLICER, "dump", "--records-only", path], capture_output=True, text=True)


@test
def intact_log_dumps_every_record(case):
    path = _make_log(case)
    p = _dump(path)
    T.eq(p.returncode, 0, "exit status")
    T.eq(p.stderr, "", "no problems")
    T.eq(sum(1 for l in p.stdout.splitlines() if l.startswith("conn ")), 5, "connections")
    T.eq(oct(os.stat(path).st_mode & 0o777), "0o600", "log is owner-only")


@test
def torn_last_record_is_detected(case):
    path = _make_log(case)
    end = HEADER + _reserved(path)
    with open(path, "r+b") as f:
        f.truncate(end - UNIT)  # cut into the last record
    p = _dump(path)
    T.eq(p.returncode, 1, "exit status")
    T.true("torn last record" in p.stderr and path in p.stderr, "reported: %r" % p.stderr)
    T.true("truncated" in p.stderr, "the truncation itself is named")
    T.eq(sum(1 for l in p.stdout.splitlines() if l.startswith("conn ")), 5, "records before the tear still read")


@test
def flipped_bit_is_detected_and_the_rest_read(case):
    path = _make_log(case)
    with open(path, "r+b") as f:
        f.seek(HEADER + 16 + 8 * 2)  # t_connect of the first connection record
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x10]))
    p = _dump(path)
    T.eq(p.returncode, 1, "exit status")
    T.true("offset 4096 fails its checksum" in p.stderr, "reported: %r" % p.stderr)
    T.eq(sum(1 for l in p.stdout.splitlines() if l.startswith("conn ")), 4, "the other connections still read")


@test
def reserved_but_unwritten_slot_is_torn(case):
    path = _make_log(case)
    with open(path, "r+b") as f:
        f.seek(HEADER)
        f.write(b"\0" * 8)  # as if the writer died between reserving and publishing
    p = _dump(path)
    T.true("torn record at offset 4096" in p.stderr, "reported: %r" % p.stderr)
    T.eq(sum(1 for l in p.stdout.splitlines() if l.startswith("conn ")), 4, "the rest still read")


@test
def files_that_are_not_logs(case):
    d = case.logdir("bad")
    cases = {
        "empty.olog": (b"", "empty file"),
        "short.olog": (b"hello", "too short"),
        "text.olog": (b"x" * 5000, "not an observe log"),
    }
    good = _make_log(case)
    with open(good, "rb") as f:
        data = bytearray(f.read())
    v = bytearray(data)
    v[8:12] = struct.pack("<I", 99)
    cases["future.olog"] = (bytes(v), "unknown log format version 99")
    s = bytearray(data)
    s[0:4] = s[0:4][::-1]
    cases["swapped.olog"] = (bytes(s), "other byte order")
    for name, (content, want) in cases.items():
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(content)
        p = _dump(path)
        T.eq(p.returncode, 1, "exit status for " + name)
        T.true(want in p.stderr and path in p.stderr, "%s: %r" % (name, p.stderr))
        T.eq(len(p.stderr.strip().splitlines()), 1, "one line for " + name)
    p = _dump(os.path.join(d, "missing.olog"))
    T.true(p.returncode == 1 and "cannot open" in p.stderr, "missing file")
    p = subprocess.run([T.SLICER, "dump"], capture_output=True, text=True)
    T.eq(p.returncode, 2, "usage error")
    p = subprocess.run([T.SLICER, "dump", "--help"], capture_output=True, text=True)
    T.true(p.returncode == 0 and "usage:" in p.stdout, "--help")



def _fixture(name, version):
    """A fixture log of two keep-alive connections of three exchanges each:
    it reads without a problem, says its version; its conns and xchgs."""
    path = os.path.join(T.ROOT, "tests", "fixtures", name)
    log = T.read_log(path)
    T.eq(log.problems, [], "no problem reported: header and records pass their version's checksum")
    T.eq(log.header["version"], version, "version")
    conns, xchgs = log.of("conn"), log.of("xchg")
    T.eq((len(conns), len(xchgs)), (2, 6), "records")
    return path, conns, xchgs


def _loaded(case, path, query):
    """The fixture loaded by the slicer: the answer to query."""
    db = os.path.join(case.dir, "fixture.db")
    T.tool(T.SLICER, "load", "-q", "-o", db, path)
    import sqlite3
    with sqlite3.connect(db) as d:
        return d.execute(query).fetchone()


@test
def a_version_1_log_is_read(case):
    """tests/fixtures/v1-keepalive.olog, written by the version 1 library
    (whose connection t_resp_last was the last byte of any exchange). It was
    made with the library of commit 5b58af4: netclient --port P --requests 3
    --conns 2 --mode epoll against observe-httpd --backend epoll --size 100."""
    path, conns, xchgs = _fixture("v1-keepalive.olog", 1)
    for c in conns:
        last = max((x for x in xchgs if x["conn"] == c["offset"]), key=lambda x: x["seq"])
        T.eq(c["t_resp_end"], last["t_resp_last"], "t_resp_end: the last exchange's last byte")
        T.eq((c["t_resp_last"], c["t5_ms"]), (None, None), "the first exchange's end is not in a version 1 record")
        T.true(c["t6_ms"] is not None and c["t6_ms"] >= 0, "T6 from the last response byte")
    n = _loaded(case, path, "SELECT count(*) FROM phases WHERE t6_ms >= 0 AND t5_ms IS NULL AND exchanges = 3")
    T.eq(n, (2,), "loaded: T6 present, T5 absent")


@test
def a_version_2_log_is_read(case):
    """tests/fixtures/v2-keepalive.olog, written by the version 2 library
    (whose checksums end with the weaker fold: the reader must check them
    with it). It was made with the library of commit dd6a1cf, as the version
    1 fixture, and cut after its last reserved record."""
    path, conns, xchgs = _fixture("v2-keepalive.olog", 2)
    for c in conns:
        first = min((x for x in xchgs if x["conn"] == c["offset"]), key=lambda x: x["seq"])
        T.eq(c["t_resp_last"], first["t_resp_last"], "the connection's T5 is its first exchange's")
    n = _loaded(case, path, "SELECT count(*) FROM exchange_phases WHERE t4_ms > 0")
    T.eq(n, (6,), "loaded: every exchange with its T4")


if __name__ == "__main__":
    T.main()
