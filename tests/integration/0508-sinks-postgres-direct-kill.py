# SPDX-License-Identifier: Apache-2.0
"""Sinks 0508: the `postgres` sink's direct path (COPY straight into the
table, taken when no row of a batch can be there yet) keeps every record
exactly once across a collector SIGKILLed in the middle of delivery and
sessions the server ends in the middle of a batch.

A table without mapped columns, so batches may take the direct path:
  1. 40,000 agent-shaped events into 4 partitions while PostgreSQL is
     stopped, so they wait as a backlog; PostgreSQL starts, the sink
     delivers in batches of 1,000, and the collector is SIGKILLed once
     2,000 rows are in (usually in the middle of the backlog).
  2. A crash between a batch's COMMIT and its offset commit, made sure of:
     with the collector up without sinks, the group sink.pg's committed
     offsets are moved back 1,500 records (a standalone commit, as the sink
     makes), so on restart the first batch of each partition overlaps rows
     already in the table (a partition without a commit yet is delivered
     from its start, over its rows, anyway).
  3. 40,000 more events, again as a backlog; while the sink delivers them
     its PostgreSQL sessions are terminated (pg_terminate_backend) twice: a
     COPY or COMMIT in flight is cut off, the sink reconnects and must read
     the table's maximum again.
At the end every (topic, partition, offset) is in the table exactly once
with its own value, the group sink.pg has lag 0, and the collector's
metrics show batches written by the direct path and overlapping batches
written by the staging path.
"""
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

N1, N2 = 40000, 40000
REWIND = 1500
N = N1 + N2
TOPIC = "web.access"
TMP = tempfile.mkdtemp(prefix="trib-0508.")
CONF = os.path.join(TMP, "collector.yaml")
pg = sinklib.Postgres(TMP)


def rows():
    try:
        return int(pg.sql("select count(*) from direct_events"))
    except TestFailure:  # not created yet
        return 0


def plugin_counter(c, name):
    body = urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10).read().decode()
    m = re.search(r'^tributary_sink_plugin_total\{sink="pg",name="%s"\} (\d+)' % name, body, re.M)
    return int(m.group(1)) if m else 0


def terminate_sessions():
    return int(pg.sql("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                      "where application_name = 'tributary-sink'"))


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 4)
    pg.stop()
    where = sinklib.produce_events(c.bootstrap, TOPIC, 0, N1, 4)
    pg.restart()
    sinklib.wait_for("some of part 1 in the table", lambda: rows() >= 2000 or rows(), 120, 0.02)
    # Where the kill lands depends on the machine's speed; part 2 makes the overlap certain.
    log("SIGKILL with %d of %d rows in the table" % (rows(), N1))
    c.stop("KILL")

    # Part 2: the offsets back, as if the last commits had not happened.
    conf = c.extra
    c.extra = []
    c.start()
    lag = sinklib.group_lag(c, "sink.pg")
    from confluent_kafka import Consumer, TopicPartition
    k = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "sink.pg",
                  "enable.auto.commit": False})
    # A partition killed before its first commit has no offset: it is delivered again from
    # the log start, over the rows it already wrote, without help.
    back = [TopicPartition(TOPIC, p, max(0, lag[(TOPIC, p)][0] - REWIND))
            for p in range(4) if lag.get((TOPIC, p), (-1,))[0] >= 0]
    if back:
        # The killed run's sink member was stored with the group: loaded again, it stays a
        # member until its session times out (10 s), and a group with members refuses a
        # standalone commit (UNKNOWN_MEMBER_ID), as Kafka's does.
        from confluent_kafka import KafkaException
        deadline = time.monotonic() + 60
        while True:
            try:
                k.commit(offsets=back, asynchronous=False)
                break
            except KafkaException as e:
                if "UNKNOWN_MEMBER_ID" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    k.close()
    log("offsets %s moved back to %s" % ({p: v[0] for (_, p), v in sorted(lag.items())},
                                         [(tp.partition, tp.offset) for tp in back]))
    c.stop("TERM")
    c.extra = conf
    c.start()
    sinklib.wait_for("the overlap delivered again",
                     lambda: plugin_counter(c, "postgres_batches_staged") >= 1 or None, 60, 0.1)

    # Part 3: a backlog, and the sink's sessions cut off while it delivers.
    pg.stop()
    where.update(sinklib.produce_events(c.bootstrap, TOPIC, N1, N2, 4))
    pg.restart()
    # On a quiet machine the backlog may be delivered before a cut lands: then there is
    # nothing left to interrupt, and the checks below still hold.
    for _ in range(2):
        floor = rows()
        if floor >= N:
            break
        sinklib.wait_for("delivery going on", lambda: rows() > floor or rows(), 120, 0.02)
        log("terminated %d sink sessions at %d rows" % (terminate_sessions(), rows()))

    def done():
        lag = sinklib.group_lag(c, "sink.pg")
        return (rows() == N and len(lag) == 4 and all(v[2] == 0 for v in lag.values())) \
            or (rows(), lag)
    sinklib.wait_for("every record and lag 0", done, 180)

    got = pg.sql("select count(*), count(distinct (topic, \"partition\", \"offset\")), "
                 "count(distinct (value->>'seq')), min((value->>'seq')::int), "
                 "max((value->>'seq')::int) from direct_events")
    log("table: count, distinct keys, distinct seq, min, max = %s" % got)
    if got != "%d|%d|%d|0|%d" % (N, N, N, N - 1):
        raise TestFailure("table is not every record once: %s" % got)
    wrong = pg.sql("select count(*) from direct_events where topic <> '%s' or "
                   "(value->>'seq')::int %% 4 <> \"partition\"" % TOPIC)
    if wrong != "0":
        raise TestFailure("%s rows in the wrong partition" % wrong)
    for (p, o), seq in list(where.items())[::499]:
        v = pg.sql("select value->>'seq' from direct_events where topic = '%s' and "
                   "\"partition\" = %d and \"offset\" = %d" % (TOPIC, p, o))
        if v != str(seq):
            raise TestFailure("(%d, %d): seq %r, want %d" % (p, o, v, seq))
    direct = plugin_counter(c, "postgres_batches_direct")
    staged = plugin_counter(c, "postgres_batches_staged")
    log("since the restart: %d batches direct, %d staged, %d direct conflicts"
        % (direct, staged, plugin_counter(c, "postgres_direct_conflicts")))
    if direct == 0 or staged == 0:
        raise TestFailure("want batches on both paths since the restart")
    log("%d records exactly once in PostgreSQL, lag 0" % N)


try:
    pg.start()
    sinklib.write_config(CONF, """
sinks:
  - name: pg
    type: postgres
    topics: ["web.access"]
    batch: {max_records: 1000, max_bytes: 4MiB, linger: 50ms}
    retry: {initial: 50ms, max: 1s}
    options: {conninfo: "%s", table: direct_events, connect_timeout: 2s}
""" % pg.conninfo())
    run_test(main, extra_args=["-c", CONF])
finally:
    pg.kill()
    shutil.rmtree(TMP, ignore_errors=True)
