# SPDX-License-Identifier: Apache-2.0
"""Sinks 0521: the `postgres` sink of test 0501 on a three-collector cluster,
the collectors SIGKILLed one at a time during the load, and one stopped.

Every collector of the cluster (ZooKeeper backend) runs the same sink `pg`:
one consumer group sink.pg across the cluster. Each partition of
web.access (4 partitions, replication factor 3) is delivered by the
collector that leads it, from its committed offset in sink.pg (read from and
committed to the group's coordinator, whichever collector that is); when a
collector dies its partitions get new leaders, which deliver them from the
committed offsets on.

  1. 12,000 events, two of them rejected for good (one not JSON, one with a
     string where the mapped column `status` is an integer): both go to the
     dead-letter topic dlq.pg with the origin headers;
  2. PostgreSQL stopped for 20 s while 12,000 more arrive, then started;
  3. four rounds of 6,000 events (acks=all, idempotent); in each round the
     collector that leads the most partitions (in the first three, of those
     not killed yet: each collector once) is SIGKILLed once the sink
     delivers the first half (the fourth round: SIGTERM, a controlled
     shutdown that moves its leaderships first); the second half is
     produced while its partitions move, and it is started again once its
     ZooKeeper session is gone.
At the end every (topic, partition, offset) but the two rejected is in the
table exactly once with its own value, dlq.pg holds exactly the two
rejected records, and the committed offsets of sink.pg are every
partition's log end (lag 0).
"""
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

spec = importlib.util.spec_from_file_location("sinklib", os.path.join(HERE, "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

N1, N2, N3 = 12000, 12000, 6000
SIGNALS = ("KILL", "KILL", "KILL", "TERM")
N = N1 + N2 + N3 * len(SIGNALS)
BAD, MISTYPED = 1234, 5678
TOPIC = "web.access"
DLQ = "dlq.pg"


def leaders(bootstrap):
    """{partition: leader id} of web.access."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=20)
    return {p: pm.leader for p, pm in md.topics[TOPIC].partitions.items()}


class PgWarehouse:
    """The `postgres` sink `pg` of test 0501 (mapped columns, a dead-letter topic)."""
    name = "PostgreSQL"
    group = "sink.pg"
    bad = {BAD: "not JSON", MISTYPED: "22P02"}  # seq -> what its dead letter's error says

    def start(self, root):
        self.pg = sinklib.Postgres(root).start()

    def sink_yaml(self):
        return """
sinks:
  - name: pg
    type: postgres
    topics: ["web.access"]
    batch: {max_records: 2000, max_bytes: 4MiB, linger: 100ms}
    retry: {initial: 100ms, max: 2s}
    dead_letter_topic: %s
    options: {conninfo: "%s", table: web_events, connect_timeout: 2s,
              columns: "host, status:integer"}
""" % (DLQ, self.pg.conninfo())

    def stop(self):
        self.pg.stop()

    def restart(self):
        self.pg.restart()

    def kill(self):
        if getattr(self, "pg", None):
            self.pg.kill()

    def rows(self):
        try:
            return int(self.pg.sql("select count(*) from web_events"))
        except TestFailure:
            return 0

    def check_table(self, where, n):
        """Every record but the rejected ones exactly once, with its own value."""
        got = self.pg.sql("select count(*), count(distinct (topic, \"partition\", \"offset\")), "
                          "count(distinct (value->>'seq')), min((value->>'seq')::int), "
                          "max((value->>'seq')::int) from web_events")
        log("table: count, distinct keys, distinct seq, min, max = %s" % got)
        k = n - len(self.bad)
        check(got == "%d|%d|%d|0|%d" % (k, k, k, n - 1), "table is not every record once: %s" % got)
        for (p, o), seq in list(where.items())[::499]:
            v = self.pg.sql("select value->>'seq' from web_events where topic = '%s' and "
                            "\"partition\" = %d and \"offset\" = %d" % (TOPIC, p, o))
            want = "" if seq in self.bad else str(seq)
            check(v == want, "(%d, %d): seq %r, want %r" % (p, o, v, want))


def scenario(wh):
    """Parts 1-3 of the docstring with the warehouse wh; checks the end state."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    with Cluster(brokers=3, session_timeout="6s") as cl:
        try:
            wh.start(cl.root)
            for b in cl.brokers.values():
                with open(b.conf, "a") as f:
                    f.write(wh.sink_yaml())
            cl.start()
            cl.wait_controller([1, 2, 3])
            from confluent_kafka.admin import AdminClient, NewTopic
            a = AdminClient({"bootstrap.servers": cl.bootstrap()})
            a.create_topics([NewTopic(TOPIC, 4, 3)])[TOPIC].result(60)
            rows = wh.rows
            nbad = len(wh.bad)

            where = sinklib.produce_events(cl.bootstrap(), TOPIC, 0, N1, 4,
                                           bad={s for s in wh.bad if s == BAD},
                                           mistyped={s for s in wh.bad if s == MISTYPED})
            wait_for("part 1 in %s" % wh.name, lambda: rows() == N1 - nbad or None, 120, 0.2)
            log("part 1: %d rows" % rows())

            log("stopping %s for 20 s" % wh.name)
            wh.stop()
            t0 = time.monotonic()
            where.update(sinklib.produce_events(cl.bootstrap(), TOPIC, N1, N2, 4))
            time.sleep(max(0, 20 - (time.monotonic() - t0)))
            wh.restart()
            wait_for("part 2 in %s" % wh.name, lambda: rows() == N1 + N2 - nbad or None, 180,
                     0.2)
            log("part 2: %d rows" % rows())

            start = N1 + N2
            killed = []
            for rnd, sig in enumerate(SIGNALS, 1):
                lead = leaders(cl.bootstrap())
                count = {b.id: sum(1 for l in lead.values() if l == b.id) for b in cl.live()}
                fresh = [i for i in sorted(count) if i not in killed] or sorted(count)
                victim = max(fresh, key=lambda i: count[i])
                check(count[victim] > 0, "round %d: no collector to stop leads a partition: %s"
                      % (rnd, lead))
                killed.append(victim)
                floor = rows()
                half = N3 // 2
                where.update(sinklib.produce_events(cl.bootstrap(), TOPIC, start, half, 4))
                wait_for("delivery of round %d going on" % rnd,
                         lambda: rows() > floor or None, 120, 0.02)
                log("round %d: SIG%s collector %d (leads %s) at %d rows"
                    % (rnd, sig, victim, sorted(p for p, l in lead.items() if l == victim),
                       rows()))
                cl.broker(victim).kill(sig)
                # The second half goes in while its partitions move; its ZooKeeper session
                # ends (SIGTERM) or expires (SIGKILL, 6 s), and its node id is free again.
                rest = ",".join(b.bootstrap for b in cl.live())
                where.update(sinklib.produce_events(rest, TOPIC, start + half, N3 - half, 4))
                cl.wait_controller([i for i in (1, 2, 3) if i != victim])
                cl.broker(victim).start()
                cl.wait_controller([1, 2, 3])
                start += N3

            wait_for("every record in %s" % wh.name, lambda: rows() == N - nbad or None, 240,
                     0.5)

            def lag_zero():
                ce = sinklib.committed_and_ends(cl.bootstrap(), wh.group, TOPIC, 4)
                return all(c == e for c, e in ce.values()) or ce
            wait_for("%s committed at the log end" % wh.group, lag_zero, 60, 0.5)
            ce = sinklib.committed_and_ends(cl.bootstrap(), wh.group, TOPIC, 4)
            log("committed, log end per partition: %s" % ce)
            check(sum(e for _, e in ce.values()) == N,
                  "the log holds %d records, %d were produced" % (sum(e for _, e in ce.values()), N))
            wh.check_table(where, N)
            if not wh.bad:
                log("%d records exactly once in %s, lag 0" % (N, wh.name))
                return
            msgs = sinklib.read_dlq(cl.bootstrap(), DLQ, 2)
            check(len(msgs) == nbad, "dead-letter topic has %d records, want %d"
                  % (len(msgs), nbad))
            seen = set()
            for m in msgs:
                h = {k: v.decode() for k, v in (m.headers() or [])}
                seq = where.get((int(h.get("tributary.origin.partition", -1)),
                                 int(h.get("tributary.origin.offset", -1))))
                check(seq in wh.bad and h.get("tributary.sink") == "pg" and
                      h.get("tributary.origin.topic") == TOPIC, "dead letter headers: %s" % h)
                err = h.get("tributary.error", "")
                check(wh.bad[seq] in err, "dead letter of record %d: %s %r" % (seq, err, m.value()))
                if seq == BAD:
                    check(m.value().startswith(b"not json {"), "dead letter value %r" % m.value())
                else:
                    check(b'"status":"oops"' in m.value(), "dead letter value %r" % m.value())
                seen.add(seq)
            check(seen == set(wh.bad), "dead letters of %s" % seen)
            log("%d records exactly once in %s, %d in %s, lag 0" % (N - nbad, wh.name, nbad, DLQ))
        finally:
            wh.kill()


if __name__ == "__main__":
    run(lambda: scenario(PgWarehouse()))
