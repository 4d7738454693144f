# SPDX-License-Identifier: Apache-2.0
"""Preferred leaders: `tributary partitions elect-leaders`, and the automatic rebalance.

Two clusters of three collectors and one ZooKeeper, each with a topic of 3
partitions and replication factor 3 (each partition led by its first replica
at creation). In each, the preferred leader of partition 0 is stopped with
SIGTERM (a controlled shutdown moves its leaderships away) and started again;
once it is back in the ISR of partition 0:

  default config   (cluster.auto.leader.rebalance.enable off): the leadership
                   stays where it went (checked after a few seconds, and the
                   controller's tributary_cluster_auto_leader_elections_total
                   is 0); `tributary partitions elect-leaders --topic T` then
                   gives it back, and a second run answers that no election
                   was needed.
  rebalance on     (auto.leader.rebalance.enable: true,
                   leader.imbalance.check.interval.seconds: 2): the
                   controller gives every partition back to its preferred
                   replica by itself (bounded wait), and counts it.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import CLI, Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

TOPIC = "pref"


def cli(bootstrap, *args):
    p = subprocess.run([CLI, "-b", bootstrap] + list(args), capture_output=True, text=True,
                       timeout=120)
    log("$ tributary %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    if p.returncode != 0:
        raise TestFailure("tributary %s: exit %d" % (" ".join(args), p.returncode))
    return p.stdout


def parts(bootstrap):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    t = a.list_topics(topic=TOPIC, timeout=10).topics[TOPIC]
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def preferred_everywhere(bootstrap):
    ps = parts(bootstrap)
    return ps if all(l == r[0] and len(i) == 3 for l, r, i in ps.values()) else None


def bounce_preferred(cl):
    """SIGTERMs partition 0's preferred leader, starts it again, waits until it is back in
    the ISR; returns its id."""
    bs = cl.bootstrap()
    ps = wait_for("every partition led by its preferred replica", lambda: preferred_everywhere(bs),
                  60, 0.5)
    pref = ps[0][1][0]
    b = cl.broker(pref)
    b.kill("TERM")
    others = [x for x in cl.brokers.values() if x.id != pref]
    bs = ",".join(x.bootstrap for x in others)
    wait_for("partition 0 led by another broker", lambda: parts(bs)[0][0] not in (pref, -1),
             60, 0.3)
    b.start()
    cl.wait_controller()
    bs = cl.bootstrap()
    wait_for("broker %d back in the ISR of partition 0" % pref,
             lambda: pref in parts(bs)[0][2], 60, 0.3)
    return pref


def auto_elections(cl):
    return sum(b.metrics().get("tributary_cluster_auto_leader_elections_total", 0)
               for b in cl.brokers.values() if b.alive())


def one_cluster(auto):
    with Cluster(brokers=3) as cl:
        if auto:
            for b in cl.brokers.values():
                with open(b.conf, "a") as f:
                    f.write("  auto.leader.rebalance.enable: true\n"
                            "  leader.imbalance.check.interval.seconds: 2\n")
        cl.start()
        cl.wait_controller()
        cli(cl.bootstrap(), "topics", "create", "--topic", TOPIC, "--partitions", "3",
            "--replication-factor", "3")
        pref = bounce_preferred(cl)
        bs = cl.bootstrap()
        if not auto:
            time.sleep(5)  # more than two intervals of the rebalance-on cluster
            ps = parts(bs)
            check(ps[0][0] != pref, "partition 0 went back to broker %d with the automatic "
                  "rebalance off: %s" % (pref, ps))
            check(auto_elections(cl) == 0, "automatic elections counted with the rebalance off")
            out = cli(bs, "partitions", "elect-leaders", "--topic", TOPIC)
            check("preferred leader elected" in out, "elect-leaders elected nothing")
            wait_for("every partition led by its preferred replica after elect-leaders",
                     lambda: preferred_everywhere(bs), 30, 0.3)
            out = cli(bs, "partitions", "elect-leaders", "--topic", TOPIC)
            check("Elected: 0, already led by their preferred replica: 3" in out,
                  "a second elect-leaders should find nothing to do")
        else:
            wait_for("the controller gives every partition back to its preferred replica",
                     lambda: preferred_everywhere(bs), 60, 0.5)
            n = auto_elections(cl)
            log("automatic elections counted: %d" % n)
            check(n >= 1, "the leaderships came back but no automatic election was counted")


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise Skip("confluent-kafka is not installed")
    one_cluster(False)
    one_cluster(True)


if __name__ == "__main__":
    run(main)
