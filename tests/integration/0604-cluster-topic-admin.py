# SPDX-License-Identifier: Apache-2.0
"""Topic administration on the zookeeper backend: every change through ZooKeeper,
seen by every broker.

One ZooKeeper and three collectors (session timeout 6 s). Checks:
  1. CreatePartitions (confluent-kafka) grows a replication-factor-3 topic from
     2 to 4 partitions: the assignment znode lists 4, and every broker's
     Metadata shows 4 partitions with leaders and 3 replicas right after;
  2. AlterConfigs through one broker: /config/topics/<t> holds the new value
     and DescribeConfigs on another broker shows it; IncrementalAlterConfigs
     (tributary topics alter) sets one config and deletes that one, and
     the others show both;
  3. ElectLeaders (key 43, preferred): with a partition led by its second
     replica (the test rewrites the state znode as a controller would), a
     broker that is not the controller answers NOT_CONTROLLER; the
     controller moves the leadership back to the first replica with a
     higher leader epoch; asked again, ELECTION_NOT_NEEDED; an unknown
     partition UNKNOWN_TOPIC_OR_PARTITION; UNCLEAN for a led partition
     ELECTION_NOT_NEEDED; with the preferred replica dead,
     PREFERRED_LEADER_NOT_AVAILABLE; with the controller paused and the
     state znode naming a leader that is no registered broker, another
     broker's Metadata answers no leader and LEADER_NOT_AVAILABLE (Kafka
     2.8's MetadataCache), and the controller elects once it runs again;
  4. DeleteTopics while a replica is down: the topic leaves the live brokers'
     Metadata, its znodes (topic, partitions, states, config, deletion
     marker) are removed, and the live brokers' log directories for it are
     deleted; the broker that was down keeps its logs (ZooKeeper does not
     name them: reported, left alone); created again, the name gets a new
     topic id and that broker replaces its stale partition 0 with the new
     one (and still leaves the others alone).
Every wait is bounded; every process stops however the test ends.
"""
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "broker"))
from kafka_raw import Conn, array, s16, s32, string  # noqa: E402
from tributary_harness import CLI, SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, admin, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30

NONE, NOT_CONTROLLER, UNKNOWN_TOPIC_OR_PARTITION = 0, 41, 3
PREFERRED_LEADER_NOT_AVAILABLE, ELECTION_NOT_NEEDED = 80, 84
LEADER_NOT_AVAILABLE = 5
GHOST = 99  # a broker id no broker registers


def md_topic(bootstrap, topic):
    a = admin(bootstrap)
    t = a.list_topics(topic=topic, timeout=15).topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p.id: (p.leader, list(p.replicas)) for p in t.partitions.values()}


def md_partition(bootstrap, topic, partition):
    """(leader, error code) of one partition in the bootstrap broker's Metadata."""
    t = admin(bootstrap).list_topics(topic=topic, timeout=15).topics.get(topic)
    if t is None or partition not in t.partitions:
        return None
    p = t.partitions[partition]
    return p.leader, (p.error.code() if p.error is not None else NONE)


def elect(bootstrap, topic, partitions, etype=0):
    """ElectLeaders v1: (top-level error, {partition: error})."""
    c = Conn(bootstrap)
    try:
        body = (struct.pack(">b", etype) +
                array([string(topic) + array([s32(p) for p in partitions])]) + s32(30000))
        r = c.call(43, 1, body)
        r.i32()  # throttle
        top = r.i16()
        out = {}
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                pid, err = r.i32(), r.i16()
                r.string()
                out[pid] = err
        return top, out
    finally:
        c.close()


def state(zk, topic, p):
    return zk.get_json(CHROOT + "/brokers/topics/%s/partitions/%d/state" % (topic, p))


def main():
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        # Metadata polls for the deleted topic must not create it again.
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("auto_create_topics: false\n")
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        other = [i for i in ids if i != ctl]
        a = admin(cl.broker(other[0]).bootstrap)
        a.create_topics([NewTopic("evolve", 2, 3)], request_timeout=60)["evolve"].result(
            timeout=90)
        zk = cl.zk.reader()
        try:
            old_id = zk.get_json(CHROOT + "/brokers/topics/evolve")[0]["topic_id"]

            # 1. CreatePartitions.
            a.create_partitions([NewPartitions("evolve", 4)],
                                request_timeout=60)["evolve"].result(timeout=90)
            asg = zk.get_json(CHROOT + "/brokers/topics/evolve")[0]
            log("assignment after CreatePartitions: %s" % asg["partitions"])
            check(sorted(asg["partitions"]) == ["0", "1", "2", "3"] and
                  all(len(set(r)) == 3 for r in asg["partitions"].values()),
                  "assignment: %s" % asg)
            check(asg["topic_id"] == old_id, "the topic id changed")
            for b in ids:
                got = wait_for("broker %d shows 4 led partitions" % b,
                               lambda: (lambda m: m and len(m) == 4 and
                                        all(l >= 0 and len(r) == 3 for l, r in m.values()) and m)(
                                   md_topic(cl.broker(b).bootstrap, "evolve")), BOUND)
                log("broker %d: %s" % (b, got))

            # 2. AlterConfigs.
            res = ConfigResource("topic", "evolve", set_config={"retention.ms": "1234567"})
            a.alter_configs([res], request_timeout=60)[res].result(timeout=90)
            cfg = zk.get_json(CHROOT + "/config/topics/evolve")[0]
            check(cfg["config"].get("retention.ms") == "1234567", "config znode: %s" % cfg)
            a2 = admin(cl.broker(other[1]).bootstrap)
            r2 = ConfigResource("topic", "evolve")
            wait_for("broker %d describes the new retention.ms" % other[1],
                     lambda: a2.describe_configs([r2])[r2].result(timeout=30)[
                         "retention.ms"].value == "1234567", BOUND)
            # IncrementalAlterConfigs (tributary topics alter): set one, delete another.
            p = subprocess.run([CLI, "-b", cl.broker(other[1]).bootstrap, "topics", "alter",
                                "--topic", "evolve", "--config", "segment.ms=3600000",
                                "--delete-config", "retention.ms"],
                               capture_output=True, text=True, timeout=120)
            check(p.returncode == 0, "topics alter: %s %s" % (p.stdout, p.stderr))
            cfg = zk.get_json(CHROOT + "/config/topics/evolve")[0]
            check(cfg["config"] == {"segment.ms": "3600000"}, "config znode after the "
                  "incremental alter: %s" % cfg)
            wait_for("broker %d describes segment.ms and the default retention.ms" % other[0],
                     lambda: (lambda c: c["segment.ms"].value == "3600000" and
                              c["retention.ms"].value == "604800000")(
                         a.describe_configs([r2])[r2].result(timeout=30)), BOUND)

            # 3. ElectLeaders.
            st, ver = state(zk, "evolve", 0)
            reps = asg["partitions"]["0"]
            moved = dict(st, leader=reps[1], leader_epoch=st["leader_epoch"] + 1)
            check(zk.set(CHROOT + "/brokers/topics/evolve/partitions/0/state",
                         json.dumps(moved).encode(), ver), "the test's state write was refused")
            wait_for("every broker sees partition 0 led by %d" % reps[1],
                     lambda: all(md_topic(cl.broker(b).bootstrap, "evolve")[0][0] == reps[1]
                                 for b in ids), BOUND)
            top, errs = elect(cl.broker(other[0]).bootstrap, "evolve", [0])
            check(top == NOT_CONTROLLER or errs.get(0) == NOT_CONTROLLER,
                  "ElectLeaders on a non-controller: %s %s" % (top, errs))
            top, errs = elect(cl.broker(ctl).bootstrap, "evolve", [0, 9])
            check(top == NONE and errs == {0: NONE, 9: UNKNOWN_TOPIC_OR_PARTITION},
                  "ElectLeaders on the controller: %s %s" % (top, errs))
            st2 = state(zk, "evolve", 0)[0]
            log("partition 0 after ElectLeaders: %s" % st2)
            check(st2["leader"] == reps[0] and st2["leader_epoch"] == moved["leader_epoch"] + 1,
                  "after ElectLeaders: %s" % st2)
            top, errs = elect(cl.broker(ctl).bootstrap, "evolve", [0])
            check(errs == {0: ELECTION_NOT_NEEDED}, "second ElectLeaders: %s" % errs)
            top, errs = elect(cl.broker(ctl).bootstrap, "evolve", [1], etype=1)
            check(errs == {1: ELECTION_NOT_NEEDED}, "UNCLEAN on a led partition: %s" % errs)

            # 3b. A leader that is not a registered broker (its session expired, the
            # controller has not elected yet; here the controller is paused and the test
            # writes the state): Metadata names no leader and answers LEADER_NOT_AVAILABLE,
            # as Kafka 2.8 does, never a leader its broker list does not hold.
            st, ver = state(zk, "evolve", 0)
            ghost = dict(st, leader=GHOST, leader_epoch=st["leader_epoch"] + 1)
            seen = []

            def ghost_written():
                p0 = md_partition(cl.broker(other[0]).bootstrap, "evolve", 0)
                seen.append(p0)
                return p0 if p0 is not None and p0[0] != st["leader"] else None
            cl.broker(ctl).pause()
            try:
                check(zk.set(CHROOT + "/brokers/topics/evolve/partitions/0/state",
                             json.dumps(ghost).encode(), ver), "the test's state write was refused")
                leader, err = wait_for("broker %d's Metadata drops leader %d of evolve/0"
                                       % (other[0], st["leader"]), ghost_written, BOUND, 0.05)
            finally:
                cl.broker(ctl).resume()
            log("broker %d's Metadata for evolve/0 while its state names broker %d: %s"
                % (other[0], GHOST, seen[-3:]))
            check(all(p0 is None or p0[0] != GHOST for p0 in seen),
                  "Metadata named unregistered broker %d as the leader: %s" % (GHOST, seen))
            check((leader, err) == (-1, LEADER_NOT_AVAILABLE),
                  "evolve/0 led by an unregistered broker: (leader, error) %s" % ((leader, err),))
            wait_for("the controller elects a registered leader for evolve/0",
                     lambda: state(zk, "evolve", 0)[0]["leader"] in ids, BOUND)
            wait_for("broker %d's Metadata shows evolve/0's new leader" % other[0],
                     lambda: (lambda p0: p0 is not None and p0[0] in ids)(
                         md_partition(cl.broker(other[0]).bootstrap, "evolve", 0)), BOUND)

            # A partition whose preferred replica is dead.
            victim = other[1]
            pv = [int(p) for p, r in asg["partitions"].items() if r[0] == victim][0]
            cl.broker(victim).kill("KILL")
            wait_for("partition %d moves off broker %d" % (pv, victim),
                     lambda: state(zk, "evolve", pv)[0]["leader"] not in (victim, -1), BOUND)
            top, errs = elect(cl.broker(ctl).bootstrap, "evolve", [pv])
            check(errs == {pv: PREFERRED_LEADER_NOT_AVAILABLE}, "preferred replica dead: %s"
                  % errs)

            # 4. DeleteTopics, with the victim still down.
            a.delete_topics(["evolve"], request_timeout=60)["evolve"].result(timeout=90)
            up = [i for i in ids if i != victim]
            for b in up:
                wait_for("broker %d no longer lists evolve" % b,
                         lambda: md_topic(cl.broker(b).bootstrap, "evolve") is None, BOUND)
            for path in ("/brokers/topics/evolve", "/config/topics/evolve",
                         "/admin/delete_topics/evolve"):
                wait_for("%s removed" % path, lambda: zk.get(CHROOT + path) is None, BOUND)
            for b in up:
                d = cl.broker(b).data
                wait_for("broker %d deleted its evolve logs" % b,
                         lambda: not [n for n in os.listdir(d) if n.startswith("evolve-")],
                         BOUND)
            # The victim missed the deletion: back, it reports its evolve logs and keeps them.
            cl.broker(victim).start()
            vd = cl.broker(victim).data
            wait_for("broker %d reports its evolve logs as unknown" % victim,
                     lambda: "log evolve-0 is not in the cluster metadata"
                     in cl.broker(victim).log_text(), BOUND)
            check(sorted(n for n in os.listdir(vd) if n.startswith("evolve-")) ==
                  ["evolve-0", "evolve-1", "evolve-2", "evolve-3"],
                  "broker %d's evolve logs: %s" % (victim, os.listdir(vd)))
            # Created again: a new topic id; the victim's stale evolve-0 is replaced.
            cl.wait_controller(ids, timeout=BOUND)  # every broker lists the victim again
            a.create_topics([NewTopic("evolve", 1, 3)], request_timeout=60)["evolve"].result(
                timeout=90)
            new_id = zk.get_json(CHROOT + "/brokers/topics/evolve")[0]["topic_id"]
            check(new_id != old_id, "the topic created again kept its old id")

            def has_new(b):
                f = os.path.join(cl.broker(b).data, "evolve-0", "partition.metadata")
                try:
                    with open(f) as fh:
                        return ("topic_id: %s" % new_id) in fh.read()
                except OSError:
                    return False
            for b in ids:
                wait_for("broker %d hosts the new evolve-0" % b, lambda: has_new(b), BOUND)
            check(os.path.isdir(os.path.join(vd, "evolve-3")),
                  "broker %d's unknown evolve-3 was removed" % victim)
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
