# SPDX-License-Identifier: Apache-2.0
"""Sinks 0504: ClickHouse schema mistakes say what to do, and heal.

Three clickhouse sinks (Debian's clickhouse-server, started here) read one
topic, each pointed at a mistake:
  missing  a table that does not exist (create_table: false)
  badkey   a MergeTree ordered by topic only: a record delivered twice
           would stay twice
  nodb     a database that does not exist
`--check-config --connect` exits 1 naming each problem. With records
produced, each sink logs exactly one error over many retries, holding the
statements to run; /health answers "degraded" naming the three sinks and
their error class; tributary_sink_up is 0 for each. The test runs the
statements each error printed; every sink resumes by itself, each of the
300 records is in each table exactly once (SELECT ... FINAL), /health is
"ok" again and tributary_sink_up is 1.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import COLLECTOR, TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

N = 300
TOPIC = "ev"
TMP = tempfile.mkdtemp(prefix="trib-0504.")
CONF = os.path.join(TMP, "collector.yaml")
ch = sinklib.ClickHouse(TMP)
SINKS = {"missing": "schema", "badkey": "schema", "nodb": "database"}
TABLES = {"missing": "default.t_missing", "badkey": "default.t_badkey", "nodb": "nosuch.events"}


def http_get(c, path):
    try:
        with urllib.request.urlopen("http://%s%s" % (c.metrics, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(c, name, sink):
    _, text = http_get(c, "/metrics")
    m = re.search(r'^%s\{sink="%s"\} (\S+)$' % (name, sink), text, re.M)
    return float(m.group(1)) if m else None


def error_lines(c, sink):
    with open(c.logs[-1], errors="replace") as f:
        return [l for l in f.read().splitlines() if "[sink:%s]" % sink in l and "ERROR" in l]


def check_connect():
    p = subprocess.run([COLLECTOR, "-c", CONF, "--check-config", "--connect"],
                       capture_output=True, text=True, timeout=120)
    log("--check-config --connect: exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
    if p.returncode != 1 or "Sanitizer" in p.stderr:
        raise TestFailure("--check-config --connect on three broken sinks: exit %d, not 1"
                          % p.returncode)
    for name, cls in SINKS.items():
        if not re.search(r"^sink %s: %s error: .*run: " % (name, cls), p.stdout, re.M):
            raise TestFailure("--check-config --connect says nothing actionable about %s: %r"
                              % (name, p.stdout))


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 2)
    where = sinklib.produce_events(c.bootstrap, TOPIC, 0, N, 2)

    def all_down():
        status, body = http_get(c, "/health")
        return (status == 200 and body.startswith("degraded\n") and
                all("sink %s: down (%s error)" % (n, k) in body for n, k in SINKS.items())) \
            or body
    sinklib.wait_for("/health to report the three sinks", all_down, 60)
    sinklib.wait_for("five retries of each sink",
                     lambda: all((metric(c, "tributary_sink_batches_retried_total", n) or 0) >= 5
                                 for n in SINKS), 60)
    statements = {}
    for name in SINKS:
        lines = error_lines(c, name)
        if len(lines) != 1:
            raise TestFailure("sink %s logged %d errors, not 1:\n%s"
                              % (name, len(lines), "\n".join(lines[:5])))
        m = re.search(r"run: (.*?)( \(or fix .*)?$", lines[0])
        if not m:
            raise TestFailure("sink %s's error names no statement: %s" % (name, lines[0]))
        statements[name] = m.group(1).split("; ")
        if metric(c, "tributary_sink_up", name) != 0:
            raise TestFailure("tributary_sink_up{sink=%s} is not 0 while it fails" % name)
    log("statements: %r" % statements)
    for name in SINKS:
        for stmt in statements[name]:
            ch.sql(stmt)

    def delivered():
        got = {}
        for name, table in TABLES.items():
            try:
                got[name] = ch.sql("SELECT count(), uniqExact(topic, partition, offset) FROM %s "
                                   "FINAL" % table).replace("\t", "|")
            except OSError as e:
                got[name] = str(e)
        return all(v == "%d|%d" % (N, N) for v in got.values()) or got
    sinklib.wait_for("every record once in each table", delivered, 120)
    for name, table in TABLES.items():
        rows = ch.sql("SELECT partition, offset, visitParamExtractInt(value, 'seq') FROM %s FINAL"
                      % table)
        got = {(int(p), int(o)): int(s) for p, o, s in (l.split("\t") for l in rows.splitlines())}
        if got != where:
            raise TestFailure("table %s: rows differ from what was produced" % table)
    sinklib.wait_for("/health ok again", lambda: http_get(c, "/health") == (200, "ok\n")
                     or http_get(c, "/health"), 30)
    for name in SINKS:
        if metric(c, "tributary_sink_up", name) != 1:
            raise TestFailure("tributary_sink_up{sink=%s} is not 1 after it recovered" % name)
        if len(error_lines(c, name)) != 1:
            raise TestFailure("sink %s logged more errors while recovering" % name)


try:
    ch.start()
    ch.sql("CREATE TABLE default.t_badkey (topic String, partition Int32, offset Int64, "
           "timestamp Int64, key Nullable(String), headers String, value Nullable(String)) "
           "ENGINE = MergeTree() ORDER BY topic")
    sinklib.write_config(CONF, """
sinks:
  - name: missing
    type: clickhouse
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {url: "%(u)s", table: t_missing, create_table: false}
  - name: badkey
    type: clickhouse
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {url: "%(u)s", table: t_badkey}
  - name: nodb
    type: clickhouse
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {url: "%(u)s", database: nosuch}
""" % {"u": ch.url()})
    check_connect()
    run_test(main, extra_args=["-c", CONF])
finally:
    ch.stop()
    shutil.rmtree(TMP, ignore_errors=True)
