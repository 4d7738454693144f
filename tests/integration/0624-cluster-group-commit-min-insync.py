# SPDX-License-Identifier: Apache-2.0
"""An OffsetCommit is not acknowledged while the ISR of the group's
__consumer_offsets partition is below min.insync.replicas (three brokers,
lib/zk_cluster.py; __consumer_offsets has replication factor 3 and
min.insync.replicas 2, the cluster defaults; replica.lag.time.max.ms 4 s
and a ZooKeeper session of 40 s, so the ISR shrinks by the leader's own
decision while the paused brokers stay registered).

  1. a standalone commit (OffsetCommit v2, generation -1) to the
     coordinator is acknowledged and OffsetFetch serves it;
  2. both followers of the partition are paused (SIGSTOP): a commit now
     cannot reach them, so it must not be acknowledged (REQUEST_TIMED_OUT
     after offsets.commit.timeout.ms, or COORDINATOR_NOT_AVAILABLE once
     the ISR shrank: Kafka's answer to NOT_ENOUGH_REPLICAS);
  3. once the ISR is the leader alone, a commit is refused
     (COORDINATOR_NOT_AVAILABLE) and OffsetFetch still serves the offset
     of step 1;
  4. the followers resume and rejoin the ISR: a commit is acknowledged
     again and served.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402
from group_failover import (COORDINATOR_NOT_AVAILABLE, NONE, REQUEST_TIMED_OUT,  # noqa: E402
                            RETRIABLE, group_partition, need_client, offset_commit,
                            offset_fetch, offsets_state, start_with_topic,
                            wait_coordinator)

TOPIC = "events"
GROUP = "min-insync"
LAG_MS = 4000


def main():
    need_client()
    with Cluster(brokers=3, session_timeout="40s") as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("  replica.lag.time.max.ms: %d\n" % LAG_MS)
        start_with_topic(cl, TOPIC)
        coord, _ = wait_coordinator(cl, GROUP)
        addr = cl.broker(coord).bootstrap
        pi = group_partition(GROUP)
        wait_for("__consumer_offsets-%d with all three replicas in sync" % pi,
                 lambda: len((offsets_state(cl, GROUP) or {}).get("isr", [])) == 3, 60)
        log("coordinator %d leads __consumer_offsets-%d, ISR %s"
            % (coord, pi, offsets_state(cl, GROUP)["isr"]))

        # 1. Acknowledged with the whole ISR.
        err = offset_commit(addr, GROUP, TOPIC, 0, 10)
        check(err == NONE, "step 1: commit of 10 answered %d" % err)
        err, offs = offset_fetch(addr, GROUP)
        check(err == NONE and offs.get((TOPIC, 0)) == 10, "step 1: OffsetFetch %d %s"
              % (err, offs))
        log("step 1: commit of 10 acknowledged and served")

        # 2. Both followers paused: no acknowledgement.
        followers = [b for b in cl.live() if b.id != coord]
        for b in followers:
            b.pause()
        t0 = time.monotonic()
        err = offset_commit(addr, GROUP, TOPIC, 0, 20)
        waited = time.monotonic() - t0
        check(err in (REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE),
              "step 2: with both followers paused a commit of 20 answered %d" % err)
        log("step 2: with both followers paused the commit of 20 answered %d after %.1f s"
            % (err, waited))

        # 3. The ISR is the leader alone: refused before the append.
        wait_for("the ISR of __consumer_offsets-%d shrunk to [%d]" % (pi, coord),
                 lambda: (offsets_state(cl, GROUP) or {}).get("isr") == [coord], 60)
        err = offset_commit(addr, GROUP, TOPIC, 0, 30)
        check(err == COORDINATOR_NOT_AVAILABLE,
              "step 3: with ISR [%d] a commit of 30 answered %d" % (coord, err))
        err, offs = offset_fetch(addr, GROUP)
        check(err == NONE and offs.get((TOPIC, 0)) == 10,
              "step 3: OffsetFetch serves %s (error %d), not the acknowledged 10"
              % (offs.get((TOPIC, 0)), err))
        log("step 3: with ISR [%d] the commit of 30 answered COORDINATOR_NOT_AVAILABLE; "
            "OffsetFetch serves 10" % coord)

        # 4. The followers come back: acknowledged again.
        for b in followers:
            b.resume()
        wait_for("__consumer_offsets-%d back to two in-sync replicas or more" % pi,
                 lambda: len((offsets_state(cl, GROUP) or {}).get("isr", [])) >= 2, 90)

        def committed():
            e = offset_commit(addr, GROUP, TOPIC, 0, 40)
            return None if e in RETRIABLE + (REQUEST_TIMED_OUT,) else (e,)
        (err,) = wait_for("a commit of 40", committed, 60)
        check(err == NONE, "step 4: commit of 40 answered %d" % err)
        err, offs = offset_fetch(addr, GROUP)
        check(err == NONE and offs.get((TOPIC, 0)) == 40, "step 4: OffsetFetch %d %s"
              % (err, offs))
        log("step 4: the followers are back; the commit of 40 is acknowledged and served")


if __name__ == "__main__":
    run(main)
