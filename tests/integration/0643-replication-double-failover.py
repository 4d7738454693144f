# SPDX-License-Identifier: Apache-2.0
"""A fast double failover leaves an epoch the new leader never had: the follower
truncates iteratively (KIP-279).

One ZooKeeper and three collectors; topic `dfo` (1 partition, replication
factor 3, min.insync.replicas 2), replicas [A, B, C] with A its first
(preferred) replica and leader at epoch e0. The test plays the controller
twice (as 0604 does: the partition's state znode written with CAS, the
ISR unchanged, leader epoch + 1), where Kafka's controller would move a
leadership by a preferred election, a reassignment or a controlled
shutdown; the last election is the controller's own.
  1. acks=all records R0 reach every replica (epoch e0);
  2. B is paused (SIGSTOP, shorter than the session timeout); A is made
     leader again at e1 and takes acks=1 records T1: B never has an
     epoch e1 batch (C fetches T1);
  3. A and C are paused, B resumes and is made leader at e2; it takes
     acks=1 records T2, more than T1, that no other replica fetches, and
     is SIGKILLed at once; A and C resume. B's log: R0 (e0), T2 (e2).
  4. the controller sees B gone and elects A (first assigned replica alive
     in the ISR) at e3 > e2; acks=all records R3 go to A and C.
     A's epochs: e0, e1, e3: it never had e2.
  5. B restarts and follows A: it asks OffsetForLeaderEpoch for e2; A
     answers with its largest epoch below, e1, ending where e3 starts
     (after T1). B has no e1: its largest epoch below is e0, so it cuts to
     where its e0 ends (all of T2) and asks again with e0; A's answer for
     e0 (the end of R0) ends the truncation. Cutting to A's first answer
     instead (Kafka before KIP-279) would keep T2's first len(T1) records
     at offsets where A holds T1: divergent replicas.
Result: the three replicas hold the same batches (offsets, CRCs, bytes),
checked while running and by tributary-replica-check (--upto end) after
SIGTERM; every acks=all record (R0, R3) is there once on every replica; no
record of T2 is left anywhere; B's truncation metric counted the cut.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from replication_scenario import (leo, log_has, metric, move, need_confluent_kafka,  # noqa: E402
                                  produce, replica_check, same_logs, start_topic, state, values_in)
from tributary_harness import log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, run, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "dfo"


def main():
    need_confluent_kafka()
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        start_topic(cl, TOPIC)
        zk = cl.zk.reader()
        try:
            replicas = zk.get_json(CHROOT + "/brokers/topics/%s" % TOPIC)[0]["partitions"]["0"]
            st = wait_for("led by its first replica with all three in the ISR", lambda: (
                lambda s: s and s["leader"] == replicas[0] and len(s["isr"]) == 3 and s)(
                    state(zk, TOPIC)), BOUND)
            A, B, C = (cl.broker(i) for i in replicas)
            e0 = st["leader_epoch"]
            log("replicas A=%d B=%d C=%d; A leads at epoch %d" % (A.id, B.id, C.id, e0))

            # 1. R0 everywhere.
            r0 = [b"r0-%d" % i for i in range(200)]
            acked, failed, left = produce(cl.bootstrap(), TOPIC, r0, "all")
            check(len(acked) == len(r0) and not failed and left == 0,
                  "acks=all R0: %d acked, %d failed, %d left" % (len(acked), len(failed), left))
            end0 = int(leo(A, TOPIC))
            for b in (B, C):
                wait_for("broker %d at %d" % (b.id, end0), lambda: leo(b, TOPIC) == end0, BOUND)

            # 2. A leads again at e1 and writes T1, which B never gets.
            t1 = [b"t1-%d" % i for i in range(100)]
            B.pause()
            try:
                e1 = move(zk, TOPIC, A.id)
                wait_for("A leads at epoch %d" % e1,
                         lambda: log_has(A, "%s-0: leader at epoch %d " % (TOPIC, e1)), BOUND)
                acked1, failed1, left1 = produce(A.bootstrap, TOPIC, t1, "1")
                check(len(acked1) == len(t1), "acks=1 T1 on A: %d acked, %s failed"
                      % (len(acked1), failed1[:2]))
                end1 = int(leo(A, TOPIC))
                check(end1 == end0 + len(t1), "A's log end %d after T1 (R0 ended at %d)"
                      % (end1, end0))
                # 3. B leads at e2, writes T2 that nobody fetches, and dies.
                A.pause()
                C.pause()
            finally:
                B.resume()
            t2 = [b"t2-%d" % i for i in range(200)]
            try:
                e2 = move(zk, TOPIC, B.id)
                wait_for("B leads at epoch %d" % e2,
                         lambda: log_has(B, "%s-0: leader at epoch %d " % (TOPIC, e2)), BOUND)
                acked2, failed2, left2 = produce(B.bootstrap, TOPIC, t2, "1")
                check(len(acked2) == len(t2), "acks=1 T2 on B: %d acked, %s failed"
                      % (len(acked2), failed2[:2]))
                end2 = int(leo(B, TOPIC))
                check(end2 == end0 + len(t2), "B's log end %d after T2 (R0 ended at %d)"
                      % (end2, end0))
                B.kill("KILL")
            finally:
                A.resume()
                C.resume()
            log("A holds T1 at [%d, %d) in epoch %d, B held T2 at [%d, %d) in epoch %d"
                % (end0, end1, e1, end0, end2, e2))

            # 4. The controller elects A; acks=all records R3 go to A and C.
            st3 = wait_for("the controller elects A", lambda: (
                lambda s: s and s["leader"] == A.id and s["leader_epoch"] > e2 and s)(
                    state(zk, TOPIC)), BOUND)
            e3 = st3["leader_epoch"]
            r3 = [b"r3-%d" % i for i in range(300)]
            acked3, failed3, left3 = produce("%s,%s" % (A.bootstrap, C.bootstrap), TOPIC, r3, "all")
            check(len(acked3) == len(r3) and left3 == 0, "acks=all R3 at epoch %d: %d acked, "
                  "%d failed (%s), %d left" % (e3, len(acked3), len(failed3), failed3[:2], left3))
            log("A leads at epoch %d; R3 acknowledged" % e3)

            # 5. B returns: two rounds of OffsetForLeaderEpoch.
            wait_for("B's registration expires",
                     lambda: zk.get(CHROOT + "/brokers/ids/%d" % B.id) is None, BOUND)
            B.start()
            wait_for("B back in the ISR", lambda: B.id in (state(zk, TOPIC) or {}).get("isr", []),
                     BOUND)
            end = int(metric(A, "tributary_partition_high_watermark", topic=TOPIC, partition=0))
            wait_for("three identical logs up to %d" % end,
                     lambda: same_logs((A, B, C), TOPIC, end), BOUND)
            for b in (A, B, C):
                vals = values_in(b, TOPIC)
                missing = [v for v in r0 + r3 if v not in vals]
                check(not missing, "%d acknowledged records missing on broker %d, e.g. %s"
                      % (len(missing), b.id, missing[:3]))
                check(len(vals) == len(set(vals)), "duplicates on broker %d" % b.id)
                kept = [v for v in vals if v.startswith(b"t2-")]
                check(not kept, "broker %d holds %d records of T2 (epoch %d), e.g. %s"
                      % (b.id, len(kept), e2, kept[:2]))
            t = metric(B, "tributary_replica_truncations_total")
            check(t and t >= 1, "broker %d counted %s truncations" % (B.id, t))
            cut = "%s-0: truncated from %d to %d " % (TOPIC, end2, end0)
            check(log_has(B, cut), "B's log has no line '%s'" % cut)
            log("B cut T2 (%d records, epoch %d) to %d, where its epoch %d ends, and holds A's"
                " log" % (len(t2), e2, end0, e0))
        finally:
            zk.close()

        replica_check((A, B, C), TOPIC)


if __name__ == "__main__":
    run(main)
