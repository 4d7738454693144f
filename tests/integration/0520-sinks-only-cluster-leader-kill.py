# SPDX-License-Identifier: Apache-2.0
"""Sinks 0520: `tributary-collector --sinks-only --bootstrap ...` loads
PostgreSQL exactly once from a three-broker cluster it is not a member of,
through a SIGKILL of a partition leader.

The cluster (ZooKeeper and three collectors, no sinks of their own) holds
web.access, 4 partitions with replication factor 3. A separate
--sinks-only process runs the `postgres` sink `pg` against it: it reads by
Fetch from each partition's leader, commits the group sink.pg's offsets at
the group's coordinator, and writes the one non-JSON record to the
dead-letter topic dlq.pg by Produce (acks=all).

  1. 16,000 events (one of them not JSON); some are delivered;
  2. the leader of partition 0 (the first address of the sink's bootstrap
     list) is SIGKILLed while 16,000 more are produced (acks=all,
     idempotent) through the two brokers left; the sink follows the new
     leaders (and the group's coordinator, wherever it moved).
At the end every (topic, partition, offset) of the log but the rejected
record is in the table exactly once with its own value, the rejected record
is in dlq.pg with the origin headers, and the committed offsets of sink.pg
are the log end of every partition (lag 0). SIGTERM ends the sink process
with status 0.
"""
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import COLLECTOR, TestFailure, check_sanitizer_files, log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402
import importlib.util  # noqa: E402

spec = importlib.util.spec_from_file_location("sinklib", os.path.join(HERE, "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

N1, N2 = 16000, 16000
N = N1 + N2
BAD = 4321
TOPIC = "web.access"
DLQ = "dlq.pg"
GROUP = "sink.pg"


def leaders(bootstrap, topic):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=20)
    return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        from tributary_harness import Skip
        raise Skip("python client missing: %s" % e)
    with Cluster(brokers=3, session_timeout="6s") as cl:
        pg = sinklib.Postgres(cl.root)
        sink = None
        try:
            pg.start()
            conf = os.path.join(cl.root, "sinks.yaml")
            sinklib.write_config(conf, """
sinks:
  - name: pg
    type: postgres
    topics: ["web.access"]
    batch: {max_records: 2000, max_bytes: 4MiB, linger: 100ms}
    retry: {initial: 100ms, max: 2s}
    dead_letter_topic: %s
    options: {conninfo: "%s", table: web_events, connect_timeout: 2s}
""" % (DLQ, pg.conninfo()))
            cl.start()
            cl.wait_controller([1, 2, 3])
            from confluent_kafka.admin import AdminClient, NewTopic
            a = AdminClient({"bootstrap.servers": cl.bootstrap()})
            a.create_topics([NewTopic(TOPIC, 4, 3)])[TOPIC].result(60)
            # The leader of partition 0 is the one killed; it is first in the sink's
            # bootstrap list, so the sink loses its bootstrap connection too.
            victim = leaders(cl.bootstrap(), TOPIC)[0]
            boot = ",".join([cl.broker(victim).bootstrap] +
                            [b.bootstrap for b in cl.live() if b.id != victim])
            sink_log = os.path.join(cl.root, "sinks-only.log")
            with open(sink_log, "wb") as lf:
                sink = subprocess.Popen([COLLECTOR, "--sinks-only", "--bootstrap", boot,
                                         "-c", conf],
                                        stdout=lf, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            log("sinks-only pid %d against %s" % (sink.pid, boot))

            def rows():
                if sink.poll() is not None:
                    raise TestFailure("the sinks-only process exited with %s" % sink.returncode)
                try:
                    return int(pg.sql("select count(*) from web_events"))
                except TestFailure:
                    return 0

            where = sinklib.produce_events(boot, TOPIC, 0, N1, 4, bad={BAD})
            wait_for("some rows", lambda: rows() >= 2000 or None, 120, 0.05)
            lead = leaders(boot, TOPIC)
            log("SIGKILL broker %d (leads %s) with %d rows in the table"
                % (victim, sorted(p for p, l in lead.items() if l == victim), rows()))
            cl.broker(victim).kill("KILL")
            rest = ",".join(b.bootstrap for b in cl.live())
            where.update(sinklib.produce_events(rest, TOPIC, N1, N2, 4))
            log("part 2 produced through brokers %s" % [b.id for b in cl.live()])

            wait_for("every record in the table", lambda: rows() == N - 1 or None, 240, 0.5)

            def lag_zero():
                ce = sinklib.committed_and_ends(rest, GROUP, TOPIC, 4)
                return all(c == e for c, e in ce.values()) or ce
            wait_for("sink.pg committed at the log end", lag_zero, 60, 0.5)
            ce = sinklib.committed_and_ends(rest, GROUP, TOPIC, 4)
            ends = sum(e for _, e in ce.values())
            log("committed, log end per partition: %s" % ce)

            got = pg.sql("select count(*), count(distinct (topic, \"partition\", \"offset\")), "
                         "count(distinct (value->>'seq')), min((value->>'seq')::int), "
                         "max((value->>'seq')::int) from web_events")
            log("table: count, distinct keys, distinct seq, min, max = %s" % got)
            check(ends == N, "the log holds %d records, %d were produced" % (ends, N))
            check(got == "%d|%d|%d|0|%d" % (N - 1, N - 1, N - 1, N - 1),
                  "table is not every record once: %s" % got)
            for (p, o), seq in list(where.items())[::499]:
                v = pg.sql("select value->>'seq' from web_events where topic = '%s' and "
                           "\"partition\" = %d and \"offset\" = %d" % (TOPIC, p, o))
                check(v == ("" if seq == BAD else str(seq)),
                      "(%d, %d): seq %r, want %d" % (p, o, v, seq))
            msgs = sinklib.read_dlq(rest, DLQ, 1)
            check(len(msgs) >= 1, "nothing in %s" % DLQ)
            for m in msgs:
                h = {k: v.decode() for k, v in (m.headers() or [])}
                seq = where.get((int(h.get("tributary.origin.partition", -1)),
                                 int(h.get("tributary.origin.offset", -1))))
                check(seq == BAD and h.get("tributary.sink") == "pg" and
                      h.get("tributary.origin.topic") == TOPIC and
                      m.value().startswith(b"not json {"), "dead letter: %s %r" % (h, m.value()))
            log("%d records exactly once in PostgreSQL, %d dead letter(s), lag 0"
                % (N - 1, len(msgs)))

            sink.send_signal(signal.SIGTERM)
            st = sink.wait(timeout=60)
            sink = None
            check(st == 0, "SIGTERM ended the sinks-only process with status %s" % st)
            check_sanitizer_files([sink_log])
        except BaseException:
            if sink is not None and os.path.exists(os.path.join(cl.root, "sinks-only.log")):
                with open(os.path.join(cl.root, "sinks-only.log"), "rb") as f:
                    text = f.read().decode("utf-8", "replace").splitlines()
                print("----- sinks-only (last 60 lines) -----\n" + "\n".join(text[-60:]),
                      file=sys.stderr)
            raise
        finally:
            if sink is not None:
                sink.kill()
                sink.wait()
            pg.kill()


run(main)
