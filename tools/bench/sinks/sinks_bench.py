#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-sinks: how fast the postgres sink loads PostgreSQL, beside
psql's \\copy of the same rows, measured in the same run on the same server.

    tributary-bench-sinks [--records N] [--partitions P] [--max-records B]
                          [--runs R] [--repo DIR] [--bin DIR]

1. A throwaway PostgreSQL 15 (tests/unit/sinks/pgtest.sh: initdb + pg_ctl,
   127.0.0.1, its default durability: fsync and synchronous_commit on).
2. A collector without sinks takes N agent-shaped events (~240 bytes of JSON
   each) into P partitions, and is stopped.
3. The collector restarts with a postgres sink on the topic; the time from
   its start until the table holds N rows gives the sink's records/s (it
   includes the sink's start: plugin load, connection, table creation).
4. The table is exported with \\copy ... TO, and \\copy ... FROM of that file
   into an empty table of the same shape (primary key included) is timed.
Steps 3 and 4 run R times (fresh tables); medians are printed.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--max-records", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repo", default=os.environ.get("TRIB_REPO", ""))
    ap.add_argument("--bin", default=HERE)
    a = ap.parse_args()
    repo = a.repo
    if not repo:
        # build/bin -> the source tree is found through CMakeCache.txt
        cache = os.path.join(a.bin, "..", "CMakeCache.txt")
        for line in open(cache):
            if line.startswith("tributary_SOURCE_DIR:STATIC="):
                repo = line.split("=", 1)[1].strip()
    sys.path.insert(0, os.path.join(repo, "tests", "integration", "lib"))
    os.environ["TRIB_BIN_DIR"] = os.path.abspath(a.bin)
    os.environ["TRIB_BUILD_DIR"] = os.path.abspath(os.path.join(a.bin, ".."))
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "sinklib", os.path.join(repo, "tests", "integration", "0599_sinklib.py"))
    sinklib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sinklib)
    import tributary_harness as th
    th.log = lambda msg: None
    sinklib.log = lambda msg: None

    tmp = tempfile.mkdtemp(prefix="trib-bench-sinks.")
    pg = sinklib.Postgres(tmp, settings=())
    c = None
    try:
        pg.start()
        c = th.Collector().start()
        sinklib.create_topic(c.bootstrap, "web.access", a.partitions)
        t0 = time.monotonic()
        sinklib.produce_events(c.bootstrap, "web.access", 0, a.records, a.partitions)
        print("produced %d events into %d partitions in %.1f s" % (
            a.records, a.partitions, time.monotonic() - t0))
        c.stop("TERM")
        size = int(pg.sql("select 1"))  # server up
        sink_rates, copy_rates = [], []
        for run in range(a.runs):
            table = "bench_%d" % run
            conf = os.path.join(tmp, "collector-%d.yaml" % run)
            sinklib.write_config(conf, """
sinks:
  - name: bench%d
    type: postgres
    topics: ["web.access"]
    workers: %d
    batch: {max_records: %d, max_bytes: 16MiB, linger: 100ms}
    options: {conninfo: "%s", table: %s}
""" % (run, a.workers, a.max_records, pg.conninfo(), table))
            c.extra = ["-c", conf]
            t0 = time.monotonic()
            c.start()
            while True:
                try:
                    n = int(pg.sql("select count(*) from %s" % table))
                except th.TestFailure:
                    n = 0
                if n >= a.records:
                    break
                time.sleep(0.05)
            dt = time.monotonic() - t0
            c.stop("TERM")
            sink_rates.append(a.records / dt)
            csv = os.path.join(tmp, "rows.csv")
            pg.sql("\\copy (select topic, \"partition\", \"offset\", ts, key, headers, value "
                   "from %s) to '%s'" % (table, csv))
            size = os.path.getsize(csv)
            pg.sql("create table copy_%d (like %s including all)" % (run, table))
            t0 = time.monotonic()
            pg.sql("\\copy copy_%d from '%s'" % (run, csv))
            dt2 = time.monotonic() - t0
            copy_rates.append(a.records / dt2)
            print("run %d: sink %.2f s (%.0f records/s), psql \\copy %.2f s (%.0f records/s)" % (
                run + 1, dt, a.records / dt, dt2, a.records / dt2))
        ms, mc = statistics.median(sink_rates), statistics.median(copy_rates)
        print("records: %d (%.0f bytes each as COPY text), batch %d, %d workers, %d partitions"
              % (a.records, size / a.records, a.max_records, a.workers, a.partitions))
        print("median: postgres sink %.0f records/s, psql \\copy %.0f records/s (sink = %.0f%%)"
              % (ms, mc, 100.0 * ms / mc))
    finally:
        if c is not None and c.proc is not None:
            c.stop("TERM")
        pg.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if c is not None:
            shutil.rmtree(c.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
