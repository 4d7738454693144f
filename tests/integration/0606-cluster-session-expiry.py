# SPDX-License-Identifier: Apache-2.0
"""Session expiry on the zookeeper backend: a paused broker catches up on everything.

One ZooKeeper and three collectors (session timeout 6 s); topics `kept`
(3 partitions, replication factor 3) and `doomed`. The controller is
SIGSTOPped for longer than its session, so the other two elect a new
controller, which moves the paused broker's leaderships to other ISR
members and takes it out of the ISRs. While it sleeps, `doomed` is deleted,
`fresh` is created and `kept` gets a config override. After SIGCONT the
ex-controller counts an expired session, registers again as a
non-controller and reads everything again: its Metadata shows `fresh`
with its leaders, not `doomed`, the same leader for every partition of
`kept` as the state znodes (a late read never undoes a newer state), and
DescribeConfigs shows the override; no state znode was written with the
old controller epoch after the new controller's election; its `doomed`
logs are deleted as it notices the topic gone. ZooKeeper itself is then
killed and restarted on its data: every broker reconnects and still shows
the same leaders.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, admin, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30


def md(bootstrap):
    """{topic: {partition: leader}} from one broker's Metadata (all topics)."""
    a = admin(bootstrap)
    m = a.list_topics(timeout=15)
    return {t: {p.id: p.leader for p in tm.partitions.values()}
            for t, tm in m.topics.items() if tm.error is None}


def zk_leaders(zk, topic):
    t = zk.get_json(CHROOT + "/brokers/topics/%s" % topic)
    if not t:
        return None
    out = {}
    for p in t[0]["partitions"]:
        s = zk.get_json(CHROOT + "/brokers/topics/%s/partitions/%s/state" % (topic, p))
        out[int(p)] = s[0] if s else None
    return out


def main():
    from confluent_kafka.admin import ConfigResource, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("auto_create_topics: false\n")
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        others = [i for i in ids if i != ctl]
        a = admin(cl.broker(others[0]).bootstrap)
        for f in a.create_topics([NewTopic("kept", 3, 3), NewTopic("doomed", 1, 3)],
                                 request_timeout=60).values():
            f.result(timeout=90)
        zk = cl.zk.reader()
        try:
            epoch0 = int(zk.get(CHROOT + "/controller_epoch")[0])
            p = cl.broker(ctl)
            p.pause()
            try:
                new_ctl = wait_for("a new controller", lambda: (lambda c: c and c != ctl and c)(
                    cl.broker(others[0]).describe()[0]), BOUND)
                epoch1 = int(zk.get(CHROOT + "/controller_epoch")[0])
                check(epoch1 > epoch0, "controller epoch %d -> %d" % (epoch0, epoch1))
                wait_for("the paused broker leaves every ISR of kept",
                         lambda: all(s and ctl not in s["isr"] and s["leader"] != ctl
                                     for s in zk_leaders(zk, "kept").values()), BOUND)
                # A new client: the first one's metadata names the paused controller.
                a = admin(cl.broker(others[0]).bootstrap)
                a.delete_topics(["doomed"], request_timeout=60)["doomed"].result(timeout=90)
                a.create_topics([NewTopic("fresh", 2, 2)], request_timeout=60)["fresh"].result(
                    timeout=90)
                res = ConfigResource("topic", "kept", set_config={"retention.ms": "7777777"})
                a.alter_configs([res], request_timeout=60)[res].result(timeout=90)
                log("changed while broker %d slept (new controller %d)" % (ctl, new_ctl))
            finally:
                p.resume()
            wait_for("broker %d registers again" % ctl,
                     lambda: p.metrics().get("tributary_cluster_registered") == 1 and
                     p.metrics().get("tributary_zookeeper_session_expirations_total", 0) >= 1,
                     BOUND)
            check(p.metrics().get("tributary_cluster_controller") == 0,
                  "the ex-controller still says it is the controller")

            def caught_up():
                m = md(p.bootstrap)
                want = {t: {i: s["leader"] for i, s in zk_leaders(zk, t).items()}
                        for t in ("kept", "fresh")}
                return ("doomed" not in m and m.get("kept") == want["kept"] and
                        m.get("fresh") == want["fresh"] and
                        all(l >= 0 for l in want["fresh"].values())) and m
            got = wait_for("broker %d's Metadata matches ZooKeeper" % ctl, caught_up, BOUND)
            log("broker %d after its new session: %s" % (ctl, got))
            r = ConfigResource("topic", "kept")
            pa = admin(p.bootstrap)
            wait_for("broker %d describes kept's new retention.ms" % ctl,
                     lambda: pa.describe_configs([r])[r].result(timeout=30)[
                         "retention.ms"].value == "7777777", BOUND)
            wait_for("broker %d deleted its doomed log" % ctl,
                     lambda: not os.path.isdir(os.path.join(p.data, "doomed-0")), BOUND)
            for t in ("kept", "fresh"):
                for i, s in zk_leaders(zk, t).items():
                    check(s["controller_epoch"] in (epoch0, epoch1) and
                          (s["controller_epoch"] == epoch1 or s["leader_epoch"] == 0 or
                           t == "kept"), "%s-%d: %s" % (t, i, s))
                    if t == "fresh":
                        check(s["controller_epoch"] == epoch1, "fresh-%d written at epoch %d"
                              % (i, s["controller_epoch"]))
            kept = zk_leaders(zk, "kept")
            check(all(s["controller_epoch"] == epoch1 for s in kept.values()
                      if s["leader_epoch"] > 0), "kept written by the old controller: %s" % kept)
        finally:
            zk.close()

        # ZooKeeper killed and restarted on its data.
        before = md(cl.broker(others[0]).bootstrap)
        cl.zk.kill()
        cl.zk.start()
        for b in cl.live():
            wait_for("broker %d reconnects" % b.id,
                     lambda: b.metrics().get("tributary_zookeeper_session_state") == 1 and
                     b.metrics().get("tributary_cluster_registered") == 1, BOUND)
        for b in cl.live():
            wait_for("broker %d shows the same leaders" % b.id,
                     lambda: {t: v for t, v in md(b.bootstrap).items() if t in before} ==
                     before, BOUND)


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
