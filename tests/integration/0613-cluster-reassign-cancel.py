# SPDX-License-Identifier: Apache-2.0
"""A reassignment from a plan file, held up and cancelled.

Three collectors and one ZooKeeper; a topic of 2 partitions with replication
factor 2, so each partition has one broker N without a replica (a partition
whose N is not the controller is picked). N is paused (SIGSTOP), and
`tributary partitions reassign --plan FILE` asks for that partition on its
two replicas plus N. N cannot copy anything, so the move stays in
progress: ListPartitionReassignments lists N as being added, and the topic
znode holds it in adding_replicas. `reassign --cancel` then puts the
original two replicas back (no role left in the znode, nothing listed), the
leader is unchanged, and once N runs again it holds no copy of the partition
(it reads the assignment without itself). A record produced at acks=all
to the partition afterwards is acknowledged. Asking to cancel again answers
NO_REASSIGNMENT_IN_PROGRESS (exit 1).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import CLI, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, run, wait_for  # noqa: E402

TOPIC = "moving"


def cli(bootstrap, *args, ok=True):
    p = subprocess.run([CLI, "-b", bootstrap] + list(args), capture_output=True, text=True,
                       timeout=120)
    log("$ tributary %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    if ok and p.returncode != 0:
        raise TestFailure("tributary %s: exit %d" % (" ".join(args), p.returncode))
    return p


def parts(bootstrap):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    t = a.list_topics(topic=TOPIC, timeout=10).topics[TOPIC]
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def main():
    try:
        from confluent_kafka import Producer
    except ImportError:
        raise Skip("confluent-kafka is not installed")
    with Cluster(brokers=3) as cl:
        cl.start()
        cl.wait_controller()
        bs = cl.bootstrap()
        cli(bs, "topics", "create", "--topic", TOPIC, "--partitions", "2",
            "--replication-factor", "2", "--config", "min.insync.replicas=1")
        before = wait_for("full ISRs",
                          lambda: (lambda ps: ps if all(len(v[2]) == 2 for v in ps.values())
                                   else None)(parts(bs)), 30, 0.3)
        ctl = cl.wait_controller()
        # The partition whose missing broker is not the controller (N is paused).
        choice = [(p, ({1, 2, 3} - set(v[1])).pop()) for p, v in sorted(before.items())]
        choice = [(p, n) for p, n in choice if n != ctl]
        check(choice, "every partition lacks the controller: %s" % before)
        pid, n = choice[0]
        leader, replicas, _isr = before[pid]
        victim = cl.broker(n)
        others = ",".join(b.bootstrap for b in cl.brokers.values() if b.id != n)
        plan = os.path.join(cl.root, "plan.txt")
        with open(plan, "w") as f:
            f.write("# partition %d onto its replicas and broker %d\n%s %d %s\n"
                    % (pid, n, TOPIC, pid, ",".join(str(x) for x in replicas + [n])))
        victim.pause()
        try:
            cli(others, "partitions", "reassign", "--plan", plan)
            out = cli(others, "partitions", "status").stdout
            check("Reassignments in progress: 1" in out and "adding %d" % n in out,
                  "the move onto the paused broker %d should be listed" % n)
            znode = cl.zk.reader().get_json(CHROOT + "/brokers/topics/%s" % TOPIC)[0]
            log("topic znode: %s" % znode)
            check(znode.get("adding_replicas", {}).get(str(pid)) == [n],
                  "adding_replicas should hold broker %d: %s" % (n, znode))
            cli(others, "partitions", "reassign", "--topic", TOPIC, "--partition", str(pid),
                "--cancel")
            out = cli(others, "partitions", "status").stdout
            check("Reassignments in progress: 0" in out, "the cancelled move is still listed")
            znode = cl.zk.reader().get_json(CHROOT + "/brokers/topics/%s" % TOPIC)[0]
            check(znode["partitions"][str(pid)] == replicas and not znode["adding_replicas"],
                  "after the cancel the znode should hold %s and no roles: %s"
                  % (replicas, znode))
            p = cli(others, "partitions", "reassign", "--topic", TOPIC, "--partition", str(pid),
                    "--cancel", ok=False)
            check(p.returncode == 1 and "NO_REASSIGNMENT_IN_PROGRESS" in p.stderr,
                  "a second cancel should answer NO_REASSIGNMENT_IN_PROGRESS")
        finally:
            if victim.paused:
                victim.resume()
        after = parts(bs)
        log("before %s, after %s" % (before, after))
        check(after[pid][1] == replicas and after[pid][0] == leader,
              "partition %d should keep replicas %s and leader %d: %s"
              % (pid, replicas, leader, after[pid]))
        gone = os.path.join(victim.data, "%s-%d" % (TOPIC, pid))
        wait_for("broker %d without a copy of %s-%d" % (n, TOPIC, pid),
                 lambda: not os.path.exists(gone), 30, 0.3)
        acked = []
        pr = Producer({"bootstrap.servers": cl.bootstrap(), "acks": "all", "log_level": 2})
        pr.produce(TOPIC, b"after", partition=pid,
                   on_delivery=lambda e, m: acked.append(e is None))
        pr.flush(30)
        check(acked == [True], "a record to partition %d was not acknowledged: %s" % (pid, acked))


if __name__ == "__main__":
    run(main)
