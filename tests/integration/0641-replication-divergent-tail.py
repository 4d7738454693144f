# SPDX-License-Identifier: Apache-2.0
"""A divergent tail is cut by leader epoch when the old leader comes back (KIP-101).

One ZooKeeper and three collectors; topic `div` (1 partition, replication
factor 3, min.insync.replicas 2), led by L with followers F1 and F2.
  1. acks=all records reach every replica;
  2. F1 and F2 are paused (SIGSTOP, shorter than the session timeout) and
     L takes acks=1 records that only it holds: its log now has a tail no
     other replica has; L is killed (SIGKILL) and the followers resume;
  3. the controller elects F1 or F2 (the ISR still holds both) with a
     higher leader epoch, and acks=all records are written to it, at the
     offsets where L's tail was;
  4. L restarts and follows: it must cut its tail at the end of its epoch
     as the new leader knows it (OffsetForLeaderEpoch), not keep it and
     not cut acknowledged records, then fetch the new leader's records.
Result: the three replicas hold the same batches (offsets, CRCs, bytes),
every acks=all record is there once, L keeps no record of its acks=1
tail that the new leader lacks (a follower may have fetched the tail's
first batch before the pause took hold: that one is the new leader's too),
and L's truncation metric counted the cut.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from replication_scenario import (metric, need_confluent_kafka, produce, same_logs,  # noqa: E402
                                  start_topic, state, values_in)
from tributary_harness import log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "div"


def main():
    need_confluent_kafka()
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        ids = start_topic(cl, TOPIC)
        zk = cl.zk.reader()
        try:
            st = wait_for("led with all three in the ISR", lambda: (
                lambda s: s and s["leader"] > 0 and len(s["isr"]) == 3 and s)(state(zk, TOPIC)),
                BOUND)
            L = st["leader"]
            followers = [i for i in ids if i != L]
            log("leader %d (epoch %d), followers %s" % (L, st["leader_epoch"], followers))

            # 1. Committed records everywhere.
            first = [b"committed-%d" % i for i in range(300)]
            acked, failed, left = produce(cl.bootstrap(), TOPIC, first, "all")
            check(len(acked) == 300 and not failed and left == 0,
                  "acks=all: %d acked, %d failed, %d left" % (len(acked), len(failed), left))
            hw = int(metric(cl.broker(L), "tributary_partition_high_watermark", topic=TOPIC,
                            partition=0))
            for f in followers:
                wait_for("follower %d at %d" % (f, hw), lambda: metric(
                    cl.broker(f), "tributary_partition_log_end_offset", topic=TOPIC,
                    partition=0) == hw, BOUND)

            # 2. A tail only the leader holds, then the leader dies.
            for f in followers:
                cl.broker(f).pause()
            try:
                tail = [b"tail-%d" % i for i in range(200)]
                acked1, failed1, left1 = produce(cl.broker(L).bootstrap, TOPIC, tail, "1")
                check(len(acked1) == 200, "acks=1 on the lone leader: %d acked, %s failed"
                      % (len(acked1), failed1[:2]))
                l_end = metric(cl.broker(L), "tributary_partition_log_end_offset",
                               topic=TOPIC, partition=0)
                check(l_end > hw, "the leader's tail: log end %s, HW %d" % (l_end, hw))
                cl.broker(L).kill("KILL")
            finally:
                for f in followers:
                    cl.broker(f).resume()
            log("leader %d killed with a tail [%d, %d) no follower has" % (L, hw, int(l_end)))

            # 3. A new leader from the ISR, and acks=all records at the tail's offsets.
            st2 = wait_for("a new leader", lambda: (
                lambda s: s and s["leader"] in followers and s)(state(zk, TOPIC)), BOUND)
            check(st2["leader_epoch"] > st["leader_epoch"], "epoch %d -> %d"
                  % (st["leader_epoch"], st2["leader_epoch"]))
            N = cl.broker(st2["leader"])
            second = [b"after-%d" % i for i in range(400)]
            live = ",".join(cl.broker(f).bootstrap for f in followers)
            acked2, failed2, left2 = produce(live, TOPIC, second, "all")
            check(len(acked2) == 400 and left2 == 0, "acks=all after the failover: %d acked, "
                  "%d failed, %d left" % (len(acked2), len(failed2), left2))
            log("new leader %d at epoch %d" % (st2["leader"], st2["leader_epoch"]))

            # 4. The old leader returns and must cut its tail by epoch.
            cl.broker(L).start()
            wait_for("broker %d back in the ISR" % L, lambda: L in (state(zk, TOPIC) or {}).get(
                "isr", []), BOUND)
            end = int(metric(N, "tributary_partition_high_watermark", topic=TOPIC, partition=0))
            wait_for("three identical logs up to %d" % end, lambda: same_logs(
                [cl.broker(i) for i in ids], TOPIC, end), BOUND)
            vals = values_in(cl.broker(L), TOPIC)
            nvals = values_in(N, TOPIC)
            # A follower may have fetched the tail's first batch before the pause took hold:
            # then it is part of the new leader's log too, and stays. The rest is cut.
            kept = [v for v in vals if v.startswith(b"tail-")]
            check(kept == [v for v in nvals if v.startswith(b"tail-")],
                  "broker %d kept %d records of its divergent tail the new leader lacks"
                  % (L, len(kept)))
            check(len(kept) < len(tail), "no tail was cut (the test did not diverge)")
            missing = [v for v in first + second if v not in vals]
            check(not missing, "%d acknowledged records missing on broker %d, e.g. %s"
                  % (len(missing), L, missing[:3]))
            check(len(vals) == len(set(vals)), "duplicates on broker %d" % L)
            t = metric(cl.broker(L), "tributary_replica_truncations_total")
            check(t and t >= 1, "broker %d counted %s truncations" % (L, t))
            log("broker %d cut %d tail records (%d truncation(s)) and holds the new leader's %d"
                " records" % (L, len(tail) - len(kept), int(t), len(vals)))
        finally:
            zk.close()


if __name__ == "__main__":
    run(main)
