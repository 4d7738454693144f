# SPDX-License-Identifier: Apache-2.0
"""An idempotent batch ahead of its producer's sequence right after a leader
change gets NOT_LEADER_OR_FOLLOWER (retriable), not OUT_OF_ORDER_SEQUENCE_NUMBER.

One ZooKeeper and three collectors; topic `gap` (1 partition, replication
factor 3, min.insync.replicas 2) led by A.
  1. A producer id from InitProducerId writes sequence 0 (2 records,
     acks=all) through A.
  2. The test plays the controller (as 0604 does): B leads at epoch + 1.
  3. Within 30 s of B taking the leadership, a batch at sequence 5 (the
     next is 2: the batches between would still be on their way to A, or
     unanswered by it) gets NOT_LEADER_OR_FOLLOWER (6). Kafka would answer
     OUT_OF_ORDER_SEQUENCE_NUMBER (45), on which librdkafka 2.0.2 bumps its
     producer epoch and re-sends every unacknowledged batch as new records:
     duplicates of those the old leader had written (the chaos checker
     caught 3). B counts it in tributary_produce_gap_after_election_total.
  4. Sequence 2 then 4 are written (offsets 2 and 4): nothing was lost or
     appended by the refusal.
  5. Once B has led for more than 30 s, a gap gets Kafka's 45 again.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, batch  # noqa: E402
from replication_scenario import log_has, metric, move, need_confluent_kafka, start_topic, state  # noqa: E402
from tributary_harness import log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "gap"
WINDOW_S = 30


def main():
    need_confluent_kafka()
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        start_topic(cl, TOPIC)
        zk = cl.zk.reader()
        try:
            st = wait_for("a leader with all three in the ISR", lambda: (
                lambda s: s and len(s["isr"]) == 3 and s)(state(zk, TOPIC)), BOUND)
            A = cl.broker(st["leader"])
            B = cl.broker(next(i for i in st["isr"] if i != A.id))
            log("A=%d leads at epoch %d; B=%d" % (A.id, st["leader_epoch"], B.id))
            a = Conn(A.bootstrap)
            err, pid, epoch = a.init_producer_id()
            check(err == 0 and epoch == 0, "InitProducerId: error %d" % err)

            def send(conn, seq):
                return conn.produce(TOPIC, 0, batch(2, "s%d" % seq, pid=pid, epoch=0, seq=seq),
                                    acks=-1, version=7)

            got = send(a, 0)
            check(got == (0, 0), "sequence 0 through A: %r" % (got,))
            a.close()

            e1 = move(zk, TOPIC, B.id)
            wait_for("B leads at epoch %d" % e1,
                     lambda: log_has(B, "%s-0: leader at epoch %d " % (TOPIC, e1)), BOUND)
            took = time.monotonic()
            b = Conn(B.bootstrap)
            got = send(b, 5)[0]
            log("sequence 5 through B right after the election: %d" % got)
            check(got == 6, "a gap right after the election: got %d, expected 6 "
                  "(NOT_LEADER_OR_FOLLOWER)" % got)
            n = metric(B, "tributary_produce_gap_after_election_total")
            check(n is not None and n >= 1, "B's tributary_produce_gap_after_election_total: %r" % n)
            for seq, off in ((2, 2), (4, 4)):
                got = wait_for("sequence %d through B" % seq,
                               lambda: (lambda r: r if r[0] == 0 else None)(send(b, seq)), BOUND)
                check(got == (0, off), "sequence %d through B: %r, expected offset %d"
                      % (seq, got, off))
            left = WINDOW_S + 1 - (time.monotonic() - took)
            if left > 0:
                log("waiting %.0f s until B has led for more than %d s" % (left, WINDOW_S))
                time.sleep(left)
            got = send(b, 10)[0]
            log("a gap once B has led for %.0f s: %d" % (time.monotonic() - took, got))
            check(got == 45, "a gap after the window: got %d, expected 45" % got)
            b.close()
        finally:
            zk.close()


if __name__ == "__main__":
    sys.exit(run(main))
