# SPDX-License-Identifier: Apache-2.0
"""Leader election by the controller on the zookeeper backend: from the ISR only.

One ZooKeeper and three collectors (session timeout 6 s). Topic `spread`
(3 partitions, replication factor 3) and topic `pair` (1 partition on the
two brokers x and y that are not the controller, x first). Checks, reading
the partition state znodes and Metadata:
  1. SIGKILL of x: after its session expires, every partition x led gets a
     new leader from its ISR with a higher leader epoch, x leaves every ISR
     (the other partitions keep their leader, with a higher epoch: Kafka's
     controller bumps it when it removes a replica from the ISR), the
     controller counts the elections, and the live brokers' Metadata shows
     the new leaders;
  2. SIGKILL of y: `pair` has no live ISR member: leader -1 with y, its last
     ISR member, kept in the ISR (offline; the controller reports it);
  3. x restarted: it is a replica of `pair` but not in its ISR, so `pair`
     stays offline (unclean election is off) -- checked once the
     controller has seen x back and has written what it would write;
  4. y restarted: y, the ISR member, leads `pair` again with a higher epoch.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, admin, check, wait_for  # noqa: E402

SESSION_S = 6
FAILOVER_BOUND = SESSION_S * 4 + 30


def states(zk, topic):
    """{partition: state dict with its znode version as 'zk_version'}."""
    t = zk.get_json(CHROOT + "/brokers/topics/%s" % topic)
    if not t:
        return None
    out = {}
    for p in t[0]["partitions"]:
        s = zk.get_json(CHROOT + "/brokers/topics/%s/partitions/%s/state" % (topic, p))
        if not s:
            return None
        s[0]["zk_version"] = s[1]
        out[int(p)] = s[0]
    return out


def md_leaders(bootstrap, topic):
    a = admin(bootstrap)
    md = a.list_topics(topic=topic, timeout=15)
    t = md.topics.get(topic)
    if t is None:
        return None
    return {p.id: p.leader for p in t.partitions.values()}


def main():
    from confluent_kafka.admin import NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        x, y = [i for i in ids if i != ctl]
        c = cl.broker(ctl)
        a = admin(c.bootstrap)
        fs = a.create_topics([NewTopic("spread", 3, 3),
                              NewTopic("pair", 1, replica_assignment=[[x, y]])],
                             request_timeout=60)
        for f in fs.values():
            f.result(timeout=90)
        zk = cl.zk.reader()
        try:
            before = states(zk, "spread")
            pair0 = states(zk, "pair")[0]
            log("controller %d, x %d, y %d; spread %s; pair %s" % (ctl, x, y, before, pair0))
            check(pair0["leader"] == x and pair0["isr"] == [x, y], "pair: %s" % pair0)

            # 1. x dies.
            cl.broker(x).kill("KILL")

            def x_gone():
                s = states(zk, "spread")
                p = states(zk, "pair")
                return (s and p and all(v["leader"] != x and x not in v["isr"]
                                        for v in s.values())
                        and p[0]["leader"] == y and p[0]["isr"] == [y]) and (s, p)
            after, pair1 = wait_for("x out of every ISR and leadership", x_gone, FAILOVER_BOUND)
            log("after x died: spread %s; pair %s" % (after, pair1[0]))
            for p, old in before.items():
                new = after[p]
                check(new["leader_epoch"] > old["leader_epoch"],
                      "partition %d: epoch %d -> %d" % (p, old["leader_epoch"],
                                                       new["leader_epoch"]))
                if old["leader"] == x:
                    check(new["leader"] in old["isr"], "partition %d: new leader %d not from "
                          "the ISR %s" % (p, new["leader"], old["isr"]))
                else:
                    check(new["leader"] == old["leader"], "partition %d: leader %d -> %d though "
                          "it was alive" % (p, old["leader"], new["leader"]))
            check(pair1[0]["leader_epoch"] > pair0["leader_epoch"], "pair epoch did not grow")
            m = c.metrics()
            check(m.get("tributary_cluster_leader_elections_total", 0) >= 2,
                  "controller metrics: %s elections"
                  % m.get("tributary_cluster_leader_elections_total"))
            for b in (ctl, y):
                got = wait_for("broker %d's Metadata shows the new leaders" % b,
                               lambda: md_leaders(cl.broker(b).bootstrap, "spread") ==
                               {p: v["leader"] for p, v in after.items()} and True,
                               FAILOVER_BOUND)
                check(got, "Metadata on %d" % b)

            # 2. y dies: pair is offline, y kept as its last ISR member.
            cl.broker(y).kill("KILL")
            pair2 = wait_for("pair offline", lambda: (lambda p: p and p[0]["leader"] == -1 and p)(
                states(zk, "pair")), FAILOVER_BOUND)[0]
            log("after y died: pair %s" % pair2)
            check(pair2["isr"] == [y], "pair's ISR after y died: %s" % pair2["isr"])
            check(pair2["leader_epoch"] > pair1[0]["leader_epoch"], "pair epoch did not grow")
            wait_for("the controller reports 1 offline partition",
                     lambda: c.metrics().get("tributary_cluster_offline_partitions") == 1,
                     FAILOVER_BOUND)
            check(md_leaders(c.bootstrap, "pair") == {0: -1}, "Metadata of pair: %s"
                  % md_leaders(c.bootstrap, "pair"))

            # 3. x comes back: not in the ISR, so pair stays offline.
            cl.broker(x).start()
            wait_for("the controller sees x back",
                     lambda: c.metrics().get("tributary_cluster_brokers") == 2, FAILOVER_BOUND)
            # The controller wrote whatever it decided on seeing x; a topic created through
            # it now is written after that in its session (ZooKeeper keeps one session's order).
            fs = a.create_topics([NewTopic("probe", 1, 2)], request_timeout=60)
            fs["probe"].result(timeout=90)
            wait_for("probe led", lambda: (lambda s: s and s[0]["leader"] >= 0)(
                states(zk, "probe")), FAILOVER_BOUND)
            pair3 = states(zk, "pair")[0]
            log("x back: pair %s" % pair3)
            check(pair3["leader"] == -1 and pair3["isr"] == [y],
                  "pair was given to a replica outside its ISR (unclean election): %s" % pair3)
            check(md_leaders(cl.broker(x).bootstrap, "pair") == {0: -1},
                  "x's Metadata of pair: %s" % md_leaders(cl.broker(x).bootstrap, "pair"))

            # 4. y comes back: the ISR member leads again.
            cl.broker(y).start()
            pair4 = wait_for("y leads pair again", lambda: (lambda p: p and p[0]["leader"] == y and p)(
                states(zk, "pair")), FAILOVER_BOUND)[0]
            log("y back: pair %s" % pair4)
            check(pair4["leader_epoch"] > pair3["leader_epoch"], "pair epoch did not grow")
            # y leads from its ISR [y]; x, a caught-up follower by now, may already be back in
            # it (the leader's expansion).
            check(pair4["isr"][0] == y and set(pair4["isr"]) <= {x, y},
                  "pair's ISR: %s" % pair4["isr"])
            wait_for("the controller reports no offline partition",
                     lambda: c.metrics().get("tributary_cluster_offline_partitions") == 0,
                     FAILOVER_BOUND)
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
