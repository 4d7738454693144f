# SPDX-License-Identifier: Apache-2.0
"""AlterPartitionReassignments and ListPartitionReassignments from kafkajs's admin client.

Three collectors and one ZooKeeper; a topic of 2 partitions with replication
factor 2. The broker N that holds no replica of one partition (not the
controller) is paused; kafkajs's admin.alterPartitionReassignments (sent to
the controller it finds in Metadata) asks for that partition on its two
replicas plus N. While N is paused, kafkajs's listPartitionReassignments
shows the partition with N in addingReplicas and the three replicas. N runs
again, catches up, and the move completes: kafkajs lists nothing any more and
Metadata shows the three replicas, all in the ISR.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

TOPIC = "kjs-moving"
JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


def kjs(bootstrap, *args):
    p = subprocess.run(["node", os.path.join(JS, "reassign.js"), bootstrap] + list(args),
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NODE_PATH=os.path.join(JS, "node_modules")))
    log("kafkajs %s -> %d %s%s" % (" ".join(args), p.returncode, p.stdout.strip(),
                                   p.stderr.strip()[-800:]))
    if p.returncode != 0:
        raise TestFailure("kafkajs %s failed: %s" % (args[0], p.stderr.strip()[-300:]))
    return json.loads(p.stdout)


def parts(bootstrap):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    t = a.list_topics(topic=TOPIC, timeout=10).topics[TOPIC]
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def available():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise Skip("confluent-kafka is not installed")
    if not shutil.which("node"):
        raise Skip("node is not installed")
    if not os.path.isdir(os.path.join(JS, "node_modules", "kafkajs")):
        if not shutil.which("npm"):
            raise Skip("kafkajs is not installed and there is no npm")
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS,
                           capture_output=True, timeout=300)
        if r.returncode != 0:
            raise Skip("npm ci in %s failed: %s" % (JS, r.stderr.decode()[-300:]))


def main():
    available()
    with Cluster(brokers=3) as cl:
        cl.start()
        cl.wait_controller()
        bs = cl.bootstrap()
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": bs, "log_level": 2})
        fs = a.create_topics([NewTopic(TOPIC, 2, 2, config={"min.insync.replicas": "1"})],
                             request_timeout=30)
        fs[TOPIC].result(30)
        before = wait_for("full ISRs",
                          lambda: (lambda ps: ps if len(ps) == 2 and
                                   all(len(v[2]) == 2 for v in ps.values()) else None)(parts(bs)),
                          30, 0.3)
        ctl = cl.wait_controller()
        choice = [(p, ({1, 2, 3} - set(v[1])).pop()) for p, v in sorted(before.items())]
        choice = [(p, n) for p, n in choice if n != ctl]
        check(choice, "every partition lacks the controller: %s" % before)
        pid, n = choice[0]
        replicas = before[pid][1]
        target = replicas + [n]
        others = ",".join(b.bootstrap for b in cl.brokers.values() if b.id != n)
        victim = cl.broker(n)
        victim.pause()
        try:
            kjs(others, "alter", TOPIC, str(pid), ",".join(map(str, target)))
            listed = kjs(others, "list")
            moving = [p for t in listed.get("topics", []) if t["name"] == TOPIC
                      for p in t["partitions"]]
            check(len(moving) == 1 and moving[0]["partition"] == pid,
                  "kafkajs should list partition %d as moving: %s" % (pid, listed))
            check(moving[0]["addingReplicas"] == [n] and moving[0]["removingReplicas"] == []
                  and moving[0]["replicas"] == target,
                  "kafkajs should see replicas %s adding [%d]: %s" % (target, n, moving[0]))
        finally:
            victim.resume()

        def done():
            listed = kjs(others, "list")
            if any(t["partitions"] for t in listed.get("topics", [])):
                return None
            ps = parts(cl.bootstrap())
            return ps if ps[pid][1] == target and set(ps[pid][2]) == set(target) else None
        after = wait_for("the move complete as kafkajs and Metadata see it", done, 60, 0.5)
        log("after: %s" % after)


if __name__ == "__main__":
    run(main)
