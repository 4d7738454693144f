# SPDX-License-Identifier: Apache-2.0
"""Controlled shutdown on the zookeeper backend: SIGTERM moves leaderships first.

One ZooKeeper and three collectors (session timeout 6 s); topic `cs` with 3
partitions and replication factor 3 (one led by each broker). Checks:
  1. SIGTERM of a broker that is not the controller: it marks its
     registration shutting_down, the controller gives each partition it led
     to another ISR member (leader epoch + 1) and takes it out of every ISR,
     and only then does the broker stop: its log says it leads no partition
     before it says it is shutting down, it exits with status 0, and its
     registration is gone;
  2. the same for the controller itself; a new controller is elected after
     it left and the partitions it led have other leaders;
  3. SIGTERM of the last broker, which leads everything with no other ISR
     member alive: nobody can take over, so it stops without waiting.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, states, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30


def moved_before_stop(b):
    text = b.log_text()
    led = text.find("controlled shutdown: this broker leads no partition")
    stop = text.find("SIGTERM: shutting down")
    return led >= 0 and stop >= 0 and led < stop


def main():
    from confluent_kafka.admin import AdminClient, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("server:\n  shutdown_timeout: 3s\n")
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        x = [i for i in ids if i != ctl][0]
        a = AdminClient({"bootstrap.servers": cl.broker(ctl).bootstrap})
        a.create_topics([NewTopic("cs", 3, 3)], request_timeout=60)["cs"].result(timeout=90)
        zk = cl.zk.reader()
        try:
            before = states(zk, "cs")
            log("controller %d; cs %s" % (ctl, before))
            check(sorted(s["leader"] for s in before.values()) == ids, "leaders %s" % before)

            # 1. A follower-and-leader broker.
            cl.broker(x).kill("TERM")
            check(moved_before_stop(cl.broker(x)), "broker %d stopped before its leaderships "
                  "moved (see its log)" % x)
            check(zk.get(CHROOT + "/brokers/ids/%d" % x) is None, "x still registered")
            after = states(zk, "cs")
            log("after %d stopped: %s" % (x, after))
            for p, s in after.items():
                check(x not in s["isr"] and s["leader"] != x, "partition %d: %s" % (p, s))
                if before[p]["leader"] == x:
                    check(s["leader"] in before[p]["isr"] and
                          s["leader_epoch"] == before[p]["leader_epoch"] + 1,
                          "partition %d moved to %s" % (p, s))

            # 2. The controller.
            c = cl.broker(ctl)
            c.kill("TERM")
            check(moved_before_stop(c), "the controller stopped before its leaderships moved")
            last = [i for i in ids if i not in (x, ctl)][0]
            wait_for("broker %d becomes the controller" % last,
                     lambda: cl.broker(last).metrics().get("tributary_cluster_controller") == 1,
                     BOUND)
            after2 = states(zk, "cs")
            log("after the controller stopped: %s" % after2)
            check(all(s["leader"] == last and s["isr"] == [last] for s in after2.values()),
                  "leaders after the controller left: %s" % after2)

            # 3. The last broker has nobody to hand over to: it stops at once.
            cl.broker(last).kill("TERM")
            text = cl.broker(last).log_text()
            check("no other live in-sync replica can lead its partitions" in text,
                  "the last broker did not say why it stopped without moving anything")
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
