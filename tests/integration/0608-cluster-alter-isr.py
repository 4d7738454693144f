# SPDX-License-Identifier: Apache-2.0
"""The leader's ISR changes on the zookeeper backend (coll_cluster_alter_isr).

One ZooKeeper and three collectors with the TRIB_TEST_ALTER_ISR=shrink hook:
each broker, on becoming leader of a partition of topic `shrink`, rewrites
the partition's state znode unchanged behind its own back (so the version
it holds is stale), then proposes ISR = [itself]. Checks:
  1. every stale proposal comes back -ESTALE, after the newer version was
     read and applied (never retried on the cached version, KAFKA-2729),
     and the proposal made again from that state is written and applied
     before its callback: the metrics count 3 of each and nothing else;
  2. the state znodes hold ISR = [leader] with the leader and leader epoch
     unchanged (0) at znode version 2 (created, rewritten, the ISR change);
  3. every broker's Metadata shows the shrunk ISRs.
With the leader side of replication the followers, caught up, are let
back into the ISR afterwards (later znode versions), which 2 and 3 allow.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30


def md_isrs(bootstrap):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap})
    t = a.list_topics(topic="shrink", timeout=15).topics.get("shrink")
    if t is None or t.error is not None:
        return None
    return {p.id: (p.leader, list(p.isrs)) for p in t.partitions.values()}


def main():
    from confluent_kafka.admin import AdminClient, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S,
                 extra_env={"TRIB_TEST_ALTER_ISR": "shrink"}) as cl:
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        a = AdminClient({"bootstrap.servers": cl.broker(ctl).bootstrap})
        a.create_topics([NewTopic("shrink", 3, 3)], request_timeout=60)["shrink"].result(
            timeout=90)

        def total(name):
            return sum(cl.broker(i).metrics().get(name, 0) for i in ids)
        wait_for("3 ISR changes applied",
                 lambda: total("tributary_test_alter_isr_ok_total") == 3, BOUND)
        check(total("tributary_test_alter_isr_stale_total") == 3, "stale answers: %s"
              % total("tributary_test_alter_isr_stale_total"))
        check(total("tributary_test_alter_isr_bad_total") == 0, "wrong answers: %s"
              % total("tributary_test_alter_isr_bad_total"))
        zk = cl.zk.reader()
        try:
            for p in range(3):
                st, ver = zk.get_json(CHROOT + "/brokers/topics/shrink/partitions/%d/state" % p)
                log("partition %d (version %d): %s" % (p, ver, st))
                # The shrink was version 2; the leader may have let its caught-up followers
                # back into the ISR since (each expansion a later version, leader first).
                check(st["isr"][0] == st["leader"] and st["leader_epoch"] == 0 and
                      (ver == 2 and st["isr"] == [st["leader"]] or ver > 2),
                      "partition %d: %s at version %d" % (p, st, ver))
        finally:
            zk.close()
        for i in ids:
            wait_for("broker %d shows the ISRs led by their leaders" % i,
                     lambda: (lambda m: m and all(isr and isr[0] == l for l, isr in m.values()))(
                         md_isrs(cl.broker(i).bootstrap)), BOUND)


if __name__ == "__main__":
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
