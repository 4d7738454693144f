# SPDX-License-Identifier: Apache-2.0
"""A coordinator that lost its __consumer_offsets partition and gets it back
serves what its successor committed, not what it held before (three
brokers, lib/zk_cluster.py, session timeout 6 s).

  1. a standalone commit of 10 (OffsetCommit v2) to the coordinator A, the
     leader (and preferred replica) of the group's partition, is
     acknowledged;
  2. A is paused (SIGSTOP) past its ZooKeeper session: the controller
     elects B, which loads the partition and acknowledges a commit of 20;
  3. A resumes: it learns it no longer leads the partition and unloads
     the group (NOT_COORDINATOR), follows B and rejoins the ISR;
  4. a preferred-leader election (ElectLeaders) gives the partition back
     to A, which must load it from its log and serve 20 (a coordinator
     that kept its groups in memory would serve its own 10).
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, run, wait_for  # noqa: E402
from group_failover import (NONE, NOT_COORDINATOR, RETRIABLE, elect_preferred,  # noqa: E402
                            find_coordinator, group_partition, need_client, offset_commit,
                            offset_fetch, offsets_state, start_with_topic,
                            wait_coordinator)

TOPIC = "events"
GROUP = "stale-coord"
OFFSETS = "__consumer_offsets"


def fetch_on(addr):
    """OffsetFetch on one broker until it answers (not a retriable error): (error, offset)."""
    def answered():
        try:
            err, offs = offset_fetch(addr, GROUP)
        except (OSError, TestFailure):
            return None
        return None if err in RETRIABLE else (err, offs.get((TOPIC, 0)))
    return wait_for("OffsetFetch on %s" % addr, answered, 60, 0.2)


def main():
    need_client()
    with Cluster(brokers=3, session_timeout="6s") as cl:
        ctl0 = start_with_topic(cl, TOPIC)
        a, _ = wait_coordinator(cl, GROUP)
        pi = group_partition(GROUP)
        zr = cl.zk.reader()
        try:
            preferred = zr.get_json(CHROOT + "/brokers/topics/" + OFFSETS)[0]["partitions"][
                str(pi)][0]
        finally:
            zr.close()
        check(preferred == a, "the coordinator %d is not the preferred replica %d of %s-%d"
              % (a, preferred, OFFSETS, pi))
        wait_for("%s-%d with all three replicas in sync" % (OFFSETS, pi),
                 lambda: len((offsets_state(cl, GROUP) or {}).get("isr", [])) == 3, 60)
        err = offset_commit(cl.broker(a).bootstrap, GROUP, TOPIC, 0, 10)
        check(err == NONE, "step 1: commit of 10 on %d answered %d" % (a, err))
        log("step 1: coordinator %d (controller %d) acknowledged a commit of 10" % (a, ctl0))

        # 2. A paused past its session: B leads and takes a commit of 20.
        cl.broker(a).pause()
        st = wait_for("a new leader of %s-%d" % (OFFSETS, pi),
                      lambda: (lambda s: s if s and s["leader"] not in (a, -1) else None)(
                          offsets_state(cl, GROUP)), 60)
        b = st["leader"]
        baddr = cl.broker(b).bootstrap

        def committed():
            e = offset_commit(baddr, GROUP, TOPIC, 0, 20)
            return None if e in RETRIABLE else (e,)
        (err,) = wait_for("a commit of 20 on %d" % b, committed, 60, 0.2)
        check(err == NONE, "step 2: commit of 20 on %d answered %d" % (b, err))
        check(fetch_on(baddr) == (NONE, 20), "step 2: %d does not serve 20" % b)
        log("step 2: with %d paused, %d leads %s-%d and acknowledged a commit of 20"
            % (a, b, OFFSETS, pi))

        # 3. A is back: a follower, it does not answer for the group.
        cl.broker(a).resume()
        wait_for("%d back in the ISR of %s-%d" % (a, OFFSETS, pi),
                 lambda: a in (offsets_state(cl, GROUP) or {}).get("isr", []), 90)
        err, _ = offset_fetch(cl.broker(a).bootstrap, GROUP)
        check(err == NOT_COORDINATOR, "step 3: %d (a follower) answered OffsetFetch with %d"
              % (a, err))
        log("step 3: %d is back in the ISR and answers NOT_COORDINATOR" % a)

        # 4. Preferred-leader election: A leads again and serves 20.
        ctl = cl.wait_controller([1, 2, 3])

        def elected():
            top, perr = elect_preferred(cl.broker(ctl).bootstrap, OFFSETS, pi)
            s = offsets_state(cl, GROUP)
            return s if s and s["leader"] == a else None
        wait_for("%d elected leader of %s-%d again" % (a, OFFSETS, pi), elected, 60, 0.5)
        wait_for("every broker naming %d" % a,
                 lambda: all(find_coordinator(x.bootstrap, GROUP) == (NONE, a)
                             for x in cl.live()), 60, 0.2)
        got = fetch_on(cl.broker(a).bootstrap)
        check(got == (NONE, 20), "step 4: %d leads %s-%d again and serves %s, not 20"
              % (a, OFFSETS, pi, got))
        log("step 4: %d leads %s-%d again and serves 20" % (a, OFFSETS, pi))


if __name__ == "__main__":
    run(main)
