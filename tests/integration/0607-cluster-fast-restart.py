# SPDX-License-Identifier: Apache-2.0
"""A broker restarted before the controller saw it gone is handled as failed.

One ZooKeeper and three collectors; broker 1 starts first and becomes the
controller, with a session timeout of 30 s, the others 6 s. Topic `bounce`
(3 partitions, replication factor 3). The controller is SIGSTOPped; a
broker x that leads a partition is SIGKILLed, its registration expires and
it is restarted (a new registration, a new broker epoch) while the
controller still sleeps; then the controller is resumed (well within its
own session). It sees x registered as before, but with another broker
epoch: as Kafka's controller, it handles x as failed (leaderships moved to
other ISR members with leader epoch + 1, x out of every ISR) instead of
keeping a restarted broker, which may have lost what it had not synced, as
leader and in-sync replica. Without the epoch comparison x would stay
leader at the same epoch: the check fails.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, states, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30


def main():
    from confluent_kafka.admin import AdminClient, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        c = cl.broker(1)
        with open(c.conf, "w") as f:
            f.write("cluster:\n  session_timeout: 30s\n")
        cl.zk.start()
        c.start()
        wait_for("broker 1 is the controller",
                 lambda: c.metrics().get("tributary_cluster_controller") == 1, BOUND)
        for i in (2, 3):
            cl.broker(i).start()
        check(cl.wait_controller([1, 2, 3]) == 1, "the controller moved")
        a = AdminClient({"bootstrap.servers": c.bootstrap})
        a.create_topics([NewTopic("bounce", 3, 3)], request_timeout=60)["bounce"].result(
            timeout=90)
        zk = cl.zk.reader()
        try:
            wait_for("bounce led", lambda: all(s["leader"] >= 0 for s in
                                               states(zk, "bounce").values()), BOUND)
            before = states(zk, "bounce")
            x = 2
            px = [p for p, s in before.items() if s["leader"] == x]
            check(px, "broker %d leads nothing: %s" % (x, before))
            epoch_x = zk.get(CHROOT + "/brokers/ids/%d" % x)
            log("before: %s" % before)
            c.pause()
            try:
                cl.broker(x).kill("KILL")
                wait_for("broker %d's registration expires" % x,
                         lambda: zk.get(CHROOT + "/brokers/ids/%d" % x) is None, BOUND)
                cl.broker(x).start()
                wait_for("broker %d registered again" % x,
                         lambda: zk.get(CHROOT + "/brokers/ids/%d" % x) is not None, BOUND)
                check(states(zk, "bounce") == before, "the states changed while the "
                      "controller slept")
            finally:
                c.resume()
            log("broker %d restarted while the controller slept (old registration %s)"
                % (x, epoch_x is not None))

            # Handled as failed: every partition got a new leader epoch (x left
            # the ISRs) and x leads none of them. Its followers may already be
            # back in an ISR by the time this looks: the leaders let a
            # caught-up follower in again, without a new epoch.
            def handled():
                s = states(zk, "bounce")
                return all(v["leader_epoch"] > before[p]["leader_epoch"] and v["leader"] != x
                           for p, v in s.items()) and s
            after = wait_for("broker %d handled as failed" % x, handled, BOUND)
            log("after: %s" % after)
            for p in px:
                check(after[p]["leader"] in before[p]["isr"] and
                      after[p]["leader_epoch"] > before[p]["leader_epoch"],
                      "partition %d: %s -> %s" % (p, before[p], after[p]))
            check(c.metrics().get("tributary_cluster_controller") == 1,
                  "broker 1 lost the controllership (its session should have survived)")
        finally:
            zk.close()


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
