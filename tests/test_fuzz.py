#!/usr/bin/env python3
"""The log reader and the manager's check of a pulled database under
libFuzzer (tests/fuzz/fuzz_reader.c, fuzz_dbcheck.c, built with
AddressSanitizer and UBSan), each for a bounded time: OBS_FUZZ_SECONDS,
default 30.  Each starts from its seed corpus, copied, so the tree is not
changed: tests/fuzz/corpus/ (real logs), and databases made from them by
this build's slicer.
Any crash, out-of-bounds read, undefined behaviour or hang (-timeout) fails
the test and leaves the input in the test's directory, named by libFuzzer.
A longer run by hand:
    cp -r tests/fuzz/corpus /tmp/c && build/fuzz/fuzz_reader -max_total_time=3600 /tmp/c
"""
import os
import re
import shutil
import sqlite3
import subprocess

import obstest as T
from obstest import test

FUZZER = os.path.join(T.BUILD, "fuzz", "fuzz_reader")
CORPUS = os.path.join(T.ROOT, "tests", "fuzz", "corpus")
DBFUZZER = os.path.join(T.BUILD, "fuzz", "fuzz_dbcheck")
SECONDS = int(os.environ.get("OBS_FUZZ_SECONDS", "30"))


@test
def seed_corpus_is_real_logs(case):
    seeds = sorted(os.listdir(CORPUS))
    T.true(len(seeds) >= 4, "seed corpus: %r" % seeds)
    for s in seeds:
        p = subprocess.run([T.SLICER, "dump", os.path.join(CORPUS, s)], capture_output=True, text=True)
        T.eq((p.returncode, p.stderr), (0, ""), "seed %s reads cleanly" % s)
        T.true(any(l.split()[0] in ("conn", "udp") for l in p.stdout.splitlines()[2:]), "seed %s has records" % s)


def fuzz(case, fuzzer, seeds, max_len, min_runs, min_cov):
    if not os.path.exists(fuzzer):
        raise AssertionError("%s was not built (make all builds it with clang)" % fuzzer)
    corpus = os.path.join(case.dir, "corpus")
    shutil.copytree(seeds, corpus)
    p = subprocess.run([fuzzer, "-max_total_time=%d" % SECONDS, "-timeout=10", "-max_len=%d" % max_len,
                        "-artifact_prefix=%s/" % case.dir, "-print_final_stats=1", corpus],
                       capture_output=True, text=True, timeout=SECONDS + 120)
    tail = p.stderr[-3000:]
    T.eq(p.returncode, 0, "libFuzzer found a problem:\n" + tail)
    runs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr).group(1))
    T.true(runs > min_runs, "the target ran %d inputs" % runs)
    cov = int(re.findall(r"cov: (\d+)", p.stderr)[-1])
    T.true(cov > min_cov, "coverage %d: the seeds reach past the first checks" % cov)


@test
def reader_survives_fuzzing(case):
    fuzz(case, FUZZER, CORPUS, 16384, 1000, 100)


def _seed_databases(case):
    """Seeds of the database check, made now with this build, so that they
    have exactly the schema and views it expects (a seed of an older schema
    stops at the first check): the log corpus loaded into a database with
    small pages, and the same with a planted trigger."""
    seeds = os.path.join(case.dir, "dbseeds")
    os.mkdir(seeds)
    real = os.path.join(seeds, "real-clients.db")
    T.tool(T.SLICER, "load", "-q", "-o", real, CORPUS)
    db = sqlite3.connect(real, isolation_level=None)
    db.execute("PRAGMA page_size = 512")  # small: the fuzzer's inputs are at most 32 KiB
    db.execute("VACUUM")
    db.close()
    T.true(os.path.getsize(real) <= 32768, "the seed fits the fuzzer's inputs")
    planted = os.path.join(seeds, "planted-trigger.db")
    shutil.copy(real, planted)
    with sqlite3.connect(planted) as db:
        db.execute("CREATE TRIGGER t AFTER INSERT ON runs BEGIN SELECT 1; END")
    return seeds


@test
def database_check_survives_fuzzing(case):
    seeds = _seed_databases(case)
    for seed in os.listdir(seeds):  # the seeds are what they say
        p = subprocess.run([T.SLICER, "summary", os.path.join(seeds, seed)], capture_output=True, text=True)
        T.eq(p.returncode, 0, "seed %s is an observe database" % seed)
    fuzz(case, DBFUZZER, seeds, 32768, 300, 60)  # SQLite itself is not instrumented


if __name__ == "__main__":
    T.main()
