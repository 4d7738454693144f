# SPDX-License-Identifier: Apache-2.0
"""Sinks 0501: the `postgres` sink against a real PostgreSQL 15 (started
here: initdb + pg_ctl in a temp dir, 127.0.0.1, ephemeral port).

100,000 agent-shaped events are produced into 4 partitions in three parts:
  1. 30,000 with PostgreSQL up;
  2. PostgreSQL stopped (fast shutdown) for 20 s while 40,000 more arrive,
     then started again;
  3. 30,000 more, and the collector SIGKILLed while it delivers them, then
     restarted.
One record of part 1 is not JSON: the sink rejects it for good, it lands in
the dead-letter topic with the error, sink and origin in headers, and the
records after it are still delivered. At the end every other (topic,
partition, offset) is in the table exactly once, with its JSONB value, and
the group sink.pg has lag 0 on every partition.
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
    while time.monotonic() < deadline and not out:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 4)
    where = {}
    where.update(sinklib.produce_events(c.bootstrap, TOPIC, 0, N1, 4, bad={BAD}))
    sinklib.wait_for("part 1 in the table", lambda: rows() == N1 - 1 or rows(), 60)

    log("stopping PostgreSQL for 20 s")
    pg.stop()
    t0 = time.monotonic()
    where.update(sinklib.produce_events(c.bootstrap, TOPIC, N1, N2, 4))
    time.sleep(max(0, 20 - (time.monotonic() - t0)))
    pg.restart()
    log("PostgreSQL is back")
    sinklib.wait_for("part 2 in the table", lambda: rows() == N1 + N2 - 1 or rows(), 120)

    # Part 3: SIGKILL the collector while it delivers.
    t = threading.Thread(target=lambda: where.update(
        sinklib.produce_events(c.bootstrap, TOPIC, N1 + N2, N3, 4)))
    t.start()
    t.join()
    sinklib.wait_for("some of part 3", lambda: rows() > N1 + N2 - 1 or rows(), 60, 0.05)
    log("SIGKILL with %d rows in the table" % rows())
    c.restart("KILL")

    def done():
        lag = sinklib.group_lag(c, "sink.pg")
        return (rows() == N - 1 and len(lag) == 4 and all(v[2] == 0 for v in lag.values())) \
            or (rows(), lag)
    sinklib.wait_for("every record and lag 0", done, 120)

    # Exactly once: the primary key forbids duplicates; check nothing is missing or extra.
    got = pg.sql("select count(*), count(distinct (topic, \"partition\", \"offset\")), "
                 "count(distinct (value->>'seq')), min((value->>'seq')::int), "
                 "max((value->>'seq')::int) from web_events")
    log("table: count, distinct keys, distinct seq, min, max = %s" % got)
    if got != "%d|%d|%d|0|%d" % (N - 1, N - 1, N - 1, N - 1):
        raise TestFailure("table is not every record once: %s" % got)
    for (p, o), seq in list(where.items())[::997]:
        v = pg.sql("select value->>'seq' from web_events where topic = '%s' and "
                   "\"partition\" = %d and \"offset\" = %d" % (TOPIC, p, o))
        if seq == BAD:
            if v != "":
                raise TestFailure("the rejected record is in the table")
        elif v != str(seq):
            raise TestFailure("(%d, %d): seq %r, want %d" % (p, o, v, seq))
    bad_at = [k for k, s in where.items() if s == BAD][0]

    msgs = read_dlq(c.bootstrap)
    if len(msgs) != 1:
        raise TestFailure("dead-letter topic has %d records, want 1" % len(msgs))
    h = {k: v.decode() for k, v in (msgs[0].headers() or [])}
    log("dead letter headers: %s" % h)
    want = {"tributary.sink": "pg", "tributary.origin.topic": TOPIC,
            "tributary.origin.partition": str(bad_at[0]),
            "tributary.origin.offset": str(bad_at[1])}
    for k, v in want.items():
        if h.get(k) != v:
            raise TestFailure("header %s = %r, want %r" % (k, h.get(k), v))
    if "not JSON" not in h.get("tributary.error", ""):
        raise TestFailure("tributary.error header: %r" % h.get("tributary.error"))
    if not msgs[0].value().startswith(b"not json {"):
        raise TestFailure("the dead letter's value changed: %r" % msgs[0].value())
    log("%d records exactly once in PostgreSQL, 1 in %s, lag 0" % (N - 1, DLQ))


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
    options: {conninfo: "%s", table: web_events, connect_timeout: 2s}
""" % (DLQ, pg.conninfo()))
    run_test(main, extra_args=["-c", CONF])
finally:
    pg.kill()
    shutil.rmtree(TMP, ignore_errors=True)
