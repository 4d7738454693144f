#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Controlled shutdown of the controller, with a producer running.

One ZooKeeper and three collectors (session timeout 6 s); topic `cc` with 3
partitions, replication factor 3 and min.insync.replicas 2 (one led by each
broker). An idempotent acks=all confluent-kafka producer writes keyed
records to every partition while the controller gets SIGTERM. Checks:
  1. every partition the controller led was moved by the controller itself
     before it resigned: its state znode carries the old controller's epoch,
     was last written before the new controller's /controller znode was
     created (ZooKeeper's zxid order), has a new leader from the old ISR at
     leader epoch + 1 exactly, and an ISR without the controller;
  2. no partition's ISR took the stopping broker back in while it shut down
     (it still fetches as a follower): every state has leader epoch + 1 at
     most, and no broker's log shows an expansion to it;
  3. the producer saw no delivery error and every record was acknowledged.
Every wait is bounded; every process stops however the test ends.
"""
import os
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30


def zxids(zk, path):
    """(czxid, mzxid) of path."""
    err, r = zk._call(4, path)  # getData
    if err != 0:
        raise TestFailure("zookeeper getData %s: error %d" % (path, err))
    (n,) = struct.unpack(">i", r[:4])
    stat = r[4 + max(n, 0):]
    return struct.unpack(">qq", stat[:16])


def states(zk, topic):
    t = zk.get_json(CHROOT + "/brokers/topics/%s" % topic)
    out = {}
    for p in t[0]["partitions"]:
        path = CHROOT + "/brokers/topics/%s/partitions/%s/state" % (topic, p)
        out[int(p)] = (zk.get_json(path)[0], zxids(zk, path)[1])
    return out


def main():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        boot = cl.bootstrap()
        a = AdminClient({"bootstrap.servers": boot})
        a.create_topics([NewTopic("cc", 3, 3, config={"min.insync.replicas": "2"})],
                        request_timeout=60)["cc"].result(timeout=90)
        zk = cl.zk.reader()
        try:
            wait_for("every partition of cc with a full ISR",
                     lambda: all(len(s["isr"]) == 3 for s, _ in states(zk, "cc").values()),
                     BOUND, 0.2)
            before = states(zk, "cc")
            ctl_epoch = zk.get_json(CHROOT + "/controller_epoch")[0]
            log("controller %d (epoch %s); cc %s" % (ctl, ctl_epoch, before))
            check(sorted(s["leader"] for s, _ in before.values()) == ids,
                  "leaders %s" % before)

            errors, acked = [], []
            p = Producer({"bootstrap.servers": boot, "acks": "all",
                          "enable.idempotence": True, "message.timeout.ms": 120000,
                          "linger.ms": 0})

            def delivered(err, msg):
                (errors if err else acked).append(err or msg.value())

            stop = threading.Event()
            sent = [0]

            def run():
                while not stop.is_set():
                    p.produce("cc", key=b"k%d" % sent[0], value=b"v%d" % sent[0],
                              on_delivery=delivered)
                    sent[0] += 1
                    p.poll(0.005)
            t = threading.Thread(target=run, daemon=True)
            t.start()
            wait_for("acknowledgements", lambda: len(acked) >= 200, BOUND, 0.05)

            others = [i for i in ids if i != ctl]
            marks = {i: len(cl.broker(i).log_text()) for i in others}
            c = cl.broker(ctl)
            c.kill("TERM")

            def elected():
                v = zk.get_json(CHROOT + "/controller")
                return v if v and v[0]["brokerid"] != ctl else None
            new_ctl = wait_for("a new controller", elected, BOUND, 0.05)
            new_ctl_czxid = zxids(zk, CHROOT + "/controller")[0]
            # Records sent after the controller left, too.
            n_then = len(acked)
            wait_for("acknowledgements after the controller left",
                     lambda: len(acked) >= n_then + 200, BOUND, 0.05)
            stop.set()
            t.join(30)
            left = p.flush(120)

            after = states(zk, "cc")
            log("new controller %s; cc %s" % (new_ctl[0], after))
            check(new_ctl[0]["brokerid"] in others, "new controller %s" % (new_ctl,))
            for i, (s, mzxid) in after.items():
                b, _ = before[i]
                check(ctl not in s["isr"] and s["leader"] != ctl, "partition %d: %s" % (i, s))
                check(s["leader_epoch"] <= b["leader_epoch"] + 1,
                      "partition %d: leader epoch %d -> %d: its ISR changed more than once "
                      "(the stopping broker taken back in and out again?)"
                      % (i, b["leader_epoch"], s["leader_epoch"]))
                if b["leader"] == ctl:
                    check(s["leader"] in b["isr"] and s["leader_epoch"] == b["leader_epoch"] + 1,
                          "partition %d moved to %s" % (i, s))
                    check(s["controller_epoch"] == ctl_epoch,
                          "partition %d was moved under controller epoch %s, not by the "
                          "stopping controller (epoch %s)" % (i, s["controller_epoch"],
                                                               ctl_epoch))
                    check(mzxid < new_ctl_czxid, "partition %d was moved after the new "
                          "controller was elected" % i)
            for i in others:
                text = cl.broker(i).log_text()[marks[i]:]
                for line in text.splitlines():
                    if "ISR is now" in line and "(expand)" in line:
                        members = line.split("[", 1)[1].split("]", 1)[0].split(",")
                        check(str(ctl) not in members,
                              "broker %d took the stopping broker %d back into an ISR: %s"
                              % (i, ctl, line))
            check(not errors, "the producer saw %d delivery errors: %s"
                  % (len(errors), sorted(set(str(e) for e in errors))[:5]))
            check(left == 0 and len(acked) == sent[0],
                  "%d sent, %d acknowledged, %d unsent" % (sent[0], len(acked), left))
            log("%d records acknowledged, no delivery error" % len(acked))
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
