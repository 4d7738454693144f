# SPDX-License-Identifier: Apache-2.0
"""Sinks 0503: PostgreSQL schema mistakes say what to do, and heal.

Three postgres sinks read one topic, each pointed at a mistake:
  missing  a table that does not exist (create_table: false)
  nokey    a table with every column but no unique key on
           (topic, partition, offset) (create_table: false)
  nodb     a database that does not exist
  noperm   a table the sink's role may not insert into
and a fourth, autofix, at a table that lacks columns (ts, key, headers and
the mapped column host) and the unique key, with create_table: true.
Before the collector starts, `--check-config` (offline) accepts the file,
`--check-config --connect` exits 1 naming each problem, says what autofix
will add at start and changes nothing in the database, and a column of an
unknown type is refused offline with its file:line:col.
With records produced, each sink logs exactly one error (over many
retries), holding the statement to run; /health answers "degraded" naming
the four sinks and their error class; tributary_sink_up is 0 for each.
The test then runs the statement each error printed; every sink resumes by
itself, each of the 300 records is in each table exactly once, /health is
"ok" again and tributary_sink_up is 1. autofix added what was missing by
itself (no error logged) and delivered every record once, host included.
"""
import glob
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
TMP = tempfile.mkdtemp(prefix="trib-0503.")
CONF = os.path.join(TMP, "collector.yaml")
BADTYPE = os.path.join(TMP, "badtype.yaml")
pg = sinklib.Postgres(TMP)
SINKS = {"missing": "schema", "nokey": "schema", "nodb": "database", "noperm": "auth"}


def psql(db, q):
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    p = subprocess.run([os.path.join(bindir, "psql"), "-X", "-q", "-h", "127.0.0.1", "-p",
                        str(pg.port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-At",
                        "-c", q], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise TestFailure("psql %s: %s" % (q, p.stderr.strip()))
    return p.stdout.strip()


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


def log_text(c):
    with open(c.logs[-1], errors="replace") as f:
        return f.read()


def error_lines(c, sink):
    return [l for l in log_text(c).splitlines()
            if "[sink:%s]" % sink in l and "ERROR" in l]


FIX_COLUMNS = ["offset", "partition", "topic", "value"]


def columns(table):
    return sorted(psql("postgres", "select attname from pg_attribute where attrelid = '%s'::regclass "
                       "and attnum > 0 and not attisdropped" % table).split())


def check_offline():
    p = subprocess.run([COLLECTOR, "-c", CONF, "--check-config"], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise TestFailure("--check-config (offline) refused the file: %s" % p.stderr)
    p = subprocess.run([COLLECTOR, "-c", CONF, "--check-config", "--connect"],
                       capture_output=True, text=True, timeout=120)
    log("--check-config --connect: exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
    if p.returncode != 1 or "Sanitizer" in p.stderr:
        raise TestFailure("--check-config --connect on four broken sinks: exit %d, not 1"
                          % p.returncode)
    for name, cls in SINKS.items():
        if not re.search(r"^sink %s: %s error: .*(run: |CREATE DATABASE)" % (name, cls),
                         p.stdout, re.M):
            raise TestFailure("--check-config --connect says nothing actionable about %s: %r"
                              % (name, p.stdout))
    if not re.search(r'^sink autofix: ok \(.*will run: ALTER TABLE "t_fix" ADD COLUMN "ts" '
                     r'timestamptz.*ADD COLUMN "host" text; ALTER TABLE "t_fix" ADD PRIMARY KEY',
                     p.stdout, re.M):
        raise TestFailure("--check-config --connect does not say what autofix will add: %r"
                          % p.stdout)
    if columns("t_fix") != FIX_COLUMNS:
        raise TestFailure("--check-config --connect changed t_fix: %r" % columns("t_fix"))
    sinklib.write_config(BADTYPE, """sinks:
  - name: typo
    type: postgres
    topics: [ev]
    options:
      conninfo: "host=127.0.0.1"
      columns: "host, status:integr"
""")
    p = subprocess.run([COLLECTOR, "-c", BADTYPE, "--check-config"], capture_output=True,
                       text=True, timeout=60)
    want = "badtype.yaml:7:16: error: sinks[0].options.columns: unknown type 'integr' for 'status'"
    if p.returncode != 2 or want not in p.stderr:
        raise TestFailure("an unknown column type is not refused offline at its position: "
                          "exit %d, %r" % (p.returncode, p.stderr))


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 2)
    where = sinklib.produce_events(c.bootstrap, TOPIC, 0, N, 2)

    def all_down():
        status, body = http_get(c, "/health")
        return (status == 200 and body.startswith("degraded\n") and
                all("sink %s: down (%s error)" % (n, k) in body for n, k in SINKS.items())) \
            or body
    sinklib.wait_for("/health to report the four sinks", all_down, 60)
    # Many retries later, still one error line each.
    sinklib.wait_for("five retries of each sink",
                     lambda: all((metric(c, "tributary_sink_batches_retried_total", n) or 0) >= 5
                                 for n in SINKS), 60)
    statements = {}
    for name in SINKS:
        lines = error_lines(c, name)
        if len(lines) != 1:
            raise TestFailure("sink %s logged %d errors, not 1:\n%s"
                              % (name, len(lines), "\n".join(lines[:5])))
        m = re.search(r"run: (.*)$", lines[0])
        if not m:
            raise TestFailure("sink %s's error names no statement: %s" % (name, lines[0]))
        statements[name] = m.group(1)
        if metric(c, "tributary_sink_up", name) != 0:
            raise TestFailure("tributary_sink_up{sink=%s} is not 0 while it fails" % name)
        if "connected to" in "\n".join(l for l in log_text(c).splitlines()
                                       if "[sink:%s]" % name in l):
            raise TestFailure("sink %s logged 'connected' while its table is unusable" % name)
    if 'tributary_sink_error_info{sink="nodb",class="database"} 1' not in http_get(c, "/metrics")[1]:
        raise TestFailure("no tributary_sink_error_info for nodb's database error")
    log("statements: %r" % statements)

    # Run what the errors said; the sinks resume by themselves.
    psql("postgres", statements["missing"])
    psql("postgres", statements["nokey"])
    psql("postgres", statements["nodb"].split(" (or ")[0])
    psql("postgres", statements["noperm"])

    def delivered():
        got = {}
        for name, db, table in (("missing", "postgres", "t_missing"),
                                ("nokey", "postgres", "t_nokey"),
                                ("nodb", "nosuch_db", "events"),
                                ("noperm", "postgres", "t_perm"),
                                ("autofix", "postgres", "t_fix")):
            try:
                got[name] = psql(db, 'select count(*), count(distinct (topic, "partition", '
                                     '"offset")) from %s' % table)
            except TestFailure as e:
                got[name] = str(e)
        return all(v == "%d|%d" % (N, N) for v in got.values()) or got
    sinklib.wait_for("every record once in each table", delivered, 120)
    for name, db, table in (("missing", "postgres", "t_missing"),
                            ("nokey", "postgres", "t_nokey"),
                            ("nodb", "nosuch_db", "events"),
                            ("noperm", "postgres", "t_perm"),
                            ("autofix", "postgres", "t_fix")):
        rows = psql(db, 'select "partition", "offset", (value->>\'seq\')::int from %s' % table)
        got = {(int(p), int(o)): int(s) for p, o, s in (l.split("|") for l in rows.splitlines())}
        if got != where:
            raise TestFailure("table %s: rows differ from what was produced" % table)
    hosts = psql("postgres", "select count(*) from t_fix where host = value->>'host'")
    if hosts != str(N):
        raise TestFailure("autofix: the added column host is filled in %s of %d rows" % (hosts, N))
    if error_lines(c, "autofix"):
        raise TestFailure("autofix logged errors: %r" % error_lines(c, "autofix"))
    sinklib.wait_for("/health ok again", lambda: http_get(c, "/health") == (200, "ok\n")
                     or http_get(c, "/health"), 30)
    for name in SINKS:
        if metric(c, "tributary_sink_up", name) != 1:
            raise TestFailure("tributary_sink_up{sink=%s} is not 1 after it recovered" % name)
        if len(error_lines(c, name)) != 1:
            raise TestFailure("sink %s logged more errors while recovering" % name)


try:
    pg.start()
    base = "host=127.0.0.1 port=%d user=postgres connect_timeout=5" % pg.port
    psql("postgres", "CREATE ROLE reader LOGIN")
    psql("postgres", 'CREATE TABLE t_perm (topic text, "partition" integer, "offset" bigint, '
                     'ts timestamptz, key text, headers jsonb, value jsonb, '
                     'PRIMARY KEY (topic, "partition", "offset"))')
    psql("postgres", 'CREATE TABLE t_fix (topic text, "partition" integer, "offset" bigint, '
                     'value jsonb)')
    psql("postgres", 'CREATE TABLE t_nokey (topic text, "partition" integer, "offset" bigint, '
                     'ts timestamptz, key text, headers jsonb, value jsonb)')
    sinklib.write_config(CONF, """
sinks:
  - name: missing
    type: postgres
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {conninfo: "%(b)s dbname=postgres", table: t_missing, create_table: false}
  - name: nokey
    type: postgres
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {conninfo: "%(b)s dbname=postgres", table: t_nokey, create_table: false}
  - name: nodb
    type: postgres
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {conninfo: "%(b)s dbname=nosuch_db"}
  - name: noperm
    type: postgres
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {conninfo: "host=127.0.0.1 port=%(p)d user=reader dbname=postgres", table: t_perm}
  - name: autofix
    type: postgres
    topics: [ev]
    batch: {linger: 100ms}
    retry: {initial: 100ms, max: 1s}
    options: {conninfo: "%(b)s dbname=postgres", table: t_fix, columns: "host"}
""" % {"b": base, "p": pg.port})
    check_offline()
    run_test(main, extra_args=["-c", CONF])
finally:
    pg.kill()
    shutil.rmtree(TMP, ignore_errors=True)
