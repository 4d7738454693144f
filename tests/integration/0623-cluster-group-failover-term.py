# SPDX-License-Identifier: Apache-2.0
"""A consumer group survives a controlled shutdown (SIGTERM) of its
coordinator (three brokers, lib/zk_cluster.py; __consumer_offsets has
replication factor 3 and min.insync.replicas 2, the cluster defaults).

A confluent-kafka consumer reads a replicated topic and commits every few
records (synchronously). After five acknowledged commits the broker that
coordinates the group (the leader of its __consumer_offsets partition) is
sent SIGTERM (the controller moves its leaderships first, then it exits
0); the consumer goes on and must get five more commits acknowledged,
through the new coordinator: no acknowledged commit is lost. Then:
  - every broker names the new leader of that __consumer_offsets partition
    as the coordinator, and it serves exactly the last acknowledged commit
    (not an older one, which is what a coordinator that never loaded the
    partition's log, or loaded a stale copy, would answer);
  - a new consumer of the group starts at that offset;
  - the stopped broker comes back (a follower now) and the group's offset
    is still the same wherever the coordinator is.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check  # noqa: E402
from group_failover import committing_consumer_failover, wait_coordinator  # noqa: E402

TOPIC = "events"
GROUP = "failover-term"
RECORDS = 400


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    with Cluster(brokers=3, session_timeout="6s") as cl:
        cl.start()
        cl.wait_controller([1, 2, 3])
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": cl.bootstrap()})
        admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(60)
        p = Producer({"bootstrap.servers": cl.bootstrap(), "acks": "all"})
        for i in range(RECORDS):
            p.produce(TOPIC, ("e%d" % i).encode(), partition=0)
        check(p.flush(60) == 0, "produce did not finish")
        coord, new, last = committing_consumer_failover(cl, TOPIC, GROUP, "TERM", RECORDS)
        cl.broker(coord).start()
        cl.wait_controller([1, 2, 3])
        node, offs = wait_coordinator(cl, GROUP)
        check(offs.get((TOPIC, 0)) == last, "after broker %d came back, coordinator %d serves "
              "%s, not %d" % (coord, node, offs.get((TOPIC, 0)), last))
        log("broker %d is back; coordinator %d still serves %d" % (coord, node, last))


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
