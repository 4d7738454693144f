# SPDX-License-Identifier: Apache-2.0
"""A consumer group survives a SIGKILL of its coordinator (three brokers,
lib/zk_cluster.py; __consumer_offsets has replication factor 3 and
min.insync.replicas 2, the cluster defaults).

A confluent-kafka consumer reads a replicated topic and commits every few
records (synchronously). After five acknowledged commits the broker that
coordinates the group (the leader of its __consumer_offsets partition) is
SIGKILLed; the consumer goes on and must get five more commits
acknowledged, through the new coordinator. Then:
  - every broker names the new leader of that __consumer_offsets partition
    as the coordinator, and it serves exactly the last acknowledged commit
    (not an older one, which is what a coordinator that never loaded the
    partition's log, or loaded a stale copy, would answer);
  - a new consumer of the group starts at that offset;
  - the killed broker comes back (a follower now) and the group's offset
    is still the same wherever the coordinator is.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from group_failover import coordinator_failover  # noqa: E402
from zk_cluster import run  # noqa: E402

TOPIC = "events"
GROUP = "failover-kill"
RECORDS = 400


def main():
    coordinator_failover(TOPIC, GROUP, "KILL", RECORDS)


if __name__ == "__main__":
    run(main)
