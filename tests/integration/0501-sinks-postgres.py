# SPDX-License-Identifier: Apache-2.0
"""Sinks 0501: the `postgres` sink against a real PostgreSQL 15 (started
here: initdb + pg_ctl in a temp dir, 127.0.0.1, ephemeral port).

100,000 agent-shaped events are produced into 4 partitions in three parts:
  1. 30,000 with PostgreSQL up;
  2. PostgreSQL stopped (fast shutdown) for 20 s while 40,000 more arrive,
     then started again;
  3. 30,000 more, and the collector SIGKILLed while it delivers them, then
     restarted.
Two records of part 1 are rejected for good: one is not JSON (the plugin
names it), the other has a string where the mapped column `status` is an
integer (PostgreSQL refuses the whole batch with 22P02: the host splits it
until the record is alone). Both land in the dead-letter topic with the
error, sink and origin in headers, and the records after them are still
delivered. At the end every other (topic, partition, offset) is in the table
exactly once, with its JSONB value, and the group sink.pg has lag 0 on every
partition.
"""
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

N1, N2, N3 = 30000, 40000, 30000
N = N1 + N2 + N3
BAD = 12345
MISTYPED = 23456
TOPIC = "web.access"
DLQ = "dlq.pg"
TMP = tempfile.mkdtemp(prefix="trib-0501.")
CONF = os.path.join(TMP, "collector.yaml")
pg = sinklib.Postgres(TMP)


def rows():
    try:
        return int(pg.sql("select count(*) from web_events"))
    except TestFailure:  # not created yet
        return 0


def read_dlq(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlq-reader",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(DLQ, p, 0) for p in range(1)])
    out = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
            if len(out) == 2:  # and a little longer, to see a third if there is one
                deadline = min(deadline, time.monotonic() + 2)
    c.close()
    return out


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 4)
    where = {}
    where.update(sinklib.produce_events(c.bootstrap, TOPIC, 0, N1, 4, bad={BAD},
                                        mistyped={MISTYPED}))
    sinklib.wait_for("part 1 in the table", lambda: rows() == N1 - 2 or rows(), 60)

    log("stopping PostgreSQL for 20 s")
    pg.stop()
    t0 = time.monotonic()
    where.update(sinklib.produce_events(c.bootstrap, TOPIC, N1, N2, 4))
    time.sleep(max(0, 20 - (time.monotonic() - t0)))
    pg.restart()
    log("PostgreSQL is back")
    sinklib.wait_for("part 2 in the table", lambda: rows() == N1 + N2 - 2 or rows(), 120)

    # Part 3: SIGKILL the collector while it delivers.
    t = threading.Thread(target=lambda: where.update(
        sinklib.produce_events(c.bootstrap, TOPIC, N1 + N2, N3, 4)))
    t.start()
    t.join()
    sinklib.wait_for("some of part 3", lambda: rows() > N1 + N2 - 2 or rows(), 60, 0.05)
    log("SIGKILL with %d rows in the table" % rows())
    c.restart("KILL")

    def done():
        lag = sinklib.group_lag(c, "sink.pg")
        return (rows() == N - 2 and len(lag) == 4 and all(v[2] == 0 for v in lag.values())) \
            or (rows(), lag)
    sinklib.wait_for("every record and lag 0", done, 120)

    # Exactly once: the primary key forbids duplicates; check nothing is missing or extra.
    got = pg.sql("select count(*), count(distinct (topic, \"partition\", \"offset\")), "
                 "count(distinct (value->>'seq')), min((value->>'seq')::int), "
                 "max((value->>'seq')::int) from web_events")
    log("table: count, distinct keys, distinct seq, min, max = %s" % got)
    if got != "%d|%d|%d|0|%d" % (N - 2, N - 2, N - 2, N - 1):
        raise TestFailure("table is not every record once: %s" % got)
    for (p, o), seq in list(where.items())[::997]:
        v = pg.sql("select value->>'seq' from web_events where topic = '%s' and "
                   "\"partition\" = %d and \"offset\" = %d" % (TOPIC, p, o))
        if seq in (BAD, MISTYPED):
            if v != "":
                raise TestFailure("the rejected record is in the table")
        elif v != str(seq):
            raise TestFailure("(%d, %d): seq %r, want %d" % (p, o, v, seq))
    msgs = read_dlq(c.bootstrap)
    if len(msgs) != 2:
        raise TestFailure("dead-letter topic has %d records, want 2" % len(msgs))
    for m in msgs:
        h = {k: v.decode() for k, v in (m.headers() or [])}
        log("dead letter headers: %s" % h)
        seq = where.get((int(h.get("tributary.origin.partition", -1)),
                         int(h.get("tributary.origin.offset", -1))))
        if seq not in (BAD, MISTYPED) or h.get("tributary.sink") != "pg" or \
                h.get("tributary.origin.topic") != TOPIC:
            raise TestFailure("dead letter headers: %s" % h)
        err = h.get("tributary.error", "")
        if seq == BAD and ("not JSON" not in err or not m.value().startswith(b"not json {")):
            raise TestFailure("dead letter of the non-JSON record: %s %r" % (err, m.value()))
        if seq == MISTYPED and ("22P02" not in err or b'"status":"oops"' not in m.value()):
            raise TestFailure("dead letter of the mistyped record: %s %r" % (err, m.value()))
    log("%d records exactly once in PostgreSQL, 2 in %s, lag 0" % (N - 2, DLQ))


try:
    pg.start()
    sinklib.write_config(CONF, """
sinks:
  - name: pg
    type: postgres
    topics: ["web.access"]
    batch: {max_records: 5000, max_bytes: 4MiB, linger: 200ms}
    retry: {initial: 100ms, max: 2s}
    dead_letter_topic: %s
    options: {conninfo: "%s", table: web_events, connect_timeout: 2s,
              columns: "host, status:integer"}
""" % (DLQ, pg.conninfo()))
    run_test(main, extra_args=["-c", CONF])
finally:
    pg.kill()
    shutil.rmtree(TMP, ignore_errors=True)
