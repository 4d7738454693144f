# SPDX-License-Identifier: Apache-2.0
"""Raising a topic's replication factor, unthrottled and throttled, through a controller kill.

Twice, on a fresh cluster of three collectors and one ZooKeeper: a topic of 4
partitions with replication factor 1 (min.insync.replicas 1) gets 8 MiB of
acks=all records; then `tributary partitions reassign --replication-factor 3
--wait` gives every partition two more replicas.

  run 1  no throttle.
  run 2  every collector has cluster.leader.replication.throttled.rate 1MiB.
         While the new replicas catch up, the topic znode must show the move
         as Kafka 2.8 writes it (the full replica list, adding_replicas,
         removing_replicas) and ListPartitionReassignments must list it;
         then the controller is SIGKILLed and started again once its
         registration is gone: the next controller resumes the reassignment
         from the topic znode and completes it. The leaders' counter of
         throttled bytes must have moved.

After each run: every partition has 3 replicas, all in the ISR, nothing is
listed as moving, every record acknowledged is read back, and, with the
collectors stopped, tributary-replica-check finds the three copies of every
partition identical.

Printed, not asserted (tests never assert on time): the seconds each
reassignment took and the bytes per second copied, with and without the
throttle, and the machine's load.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import BIN_DIR, CLI, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, run, wait_for  # noqa: E402

TOPIC = "bulk"
PARTITIONS = 4
RECORD = 4096
RECORDS = 2048  # 8 MiB
THROTTLE = 1 << 20
REPLICA_CHECK = os.path.join(BIN_DIR, "tributary-replica-check")


def cli(bootstrap, *args, timeout=300):
    p = subprocess.run([CLI, "-b", bootstrap] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    out = p.stdout if len(p.stdout) < 3000 else p.stdout[:1500] + "\n...\n" + p.stdout[-1500:]
    log("$ tributary %s -> %d\n%s%s" % (" ".join(args), p.returncode, out, p.stderr[-2000:]))
    if p.returncode != 0:
        raise TestFailure("tributary %s: exit %d" % (" ".join(args), p.returncode))
    return p.stdout


def partitions(bootstrap):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    t = a.list_topics(topic=TOPIC, timeout=10).topics[TOPIC]
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def fill(bootstrap):
    from confluent_kafka import Producer
    acked = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 20, "log_level": 2})

    def cb(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset()))
    payload = b"x" * (RECORD - 16)
    for i in range(RECORDS):
        while True:
            try:
                p.produce(TOPIC, value=b"%015d-" % i + payload, partition=i % PARTITIONS,
                          on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    check(left == 0 and len(acked) == RECORDS,
          "only %d of %d records acknowledged (%d unsettled)" % (len(acked), RECORDS, left))
    return acked


def read_all(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reassign-check",
                  "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 2})
    seen = set()
    ends = {}
    for p in range(PARTITIONS):
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
        ends[p] = hi
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    deadline = time.monotonic() + 120
    while len(seen) < sum(ends.values()) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen.add((m.partition(), m.offset()))
    c.close()
    return seen


def one_run(throttled):
    name = "throttled" if throttled else "unthrottled"
    with Cluster(brokers=3) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("  replica.lag.time.max.ms: 10000\n")
                if throttled:
                    f.write("  leader.replication.throttled.rate: %d\n" % THROTTLE)
        cl.start()
        cl.wait_controller()
        bs = cl.bootstrap()
        cli(bs, "topics", "create", "--topic", TOPIC, "--partitions", str(PARTITIONS),
            "--replication-factor", "1", "--config", "min.insync.replicas=1")
        acked = fill(bs)
        before = partitions(bs)
        check(all(len(r) == 1 for _l, r, _i in before.values()),
              "replication factor 1 expected: %s" % before)
        t0 = time.monotonic()
        if not throttled:
            cli(bs, "partitions", "reassign", "--topic", TOPIC, "--replication-factor", "3",
                "--wait", "--timeout-ms", "240000")
        else:
            cli(bs, "partitions", "reassign", "--topic", TOPIC, "--replication-factor", "3")
            zk = cl.zk.reader()
            znode = zk.get_json(CHROOT + "/brokers/topics/%s" % TOPIC)[0]
            log("topic znode while moving: %s" % json.dumps(znode, sort_keys=True))
            adding = znode.get("adding_replicas", {})
            check(len(adding) == PARTITIONS and all(len(v) == 2 for v in adding.values()),
                  "adding_replicas should name 2 new replicas of each partition: %s" % znode)
            check(all(len(znode["partitions"][p]) == 3 for p in adding),
                  "the replica lists should hold old and new replicas: %s" % znode)
            status = cli(bs, "partitions", "status")
            check("Reassignments in progress: %d" % PARTITIONS in status,
                  "ListPartitionReassignments should list the %d moving partitions"
                  % PARTITIONS)
            ctl = cl.wait_controller()
            time.sleep(1.5)
            log("killing the controller (broker %d) in the middle of the reassignment" % ctl)
            victim = cl.broker(ctl)
            victim.kill("KILL")
            others = [b for b in cl.brokers.values() if b.id != ctl]
            wait_for("broker %d's registration gone" % ctl,
                     lambda: ctl not in others[0].describe()[1], 60, 0.3)
            new_ctl = cl.wait_controller([b.id for b in others])
            log("new controller: broker %d" % new_ctl)
            victim.start()
            cl.wait_controller()
            bs = cl.bootstrap()
            cli(bs, "partitions", "status", "--wait", "--timeout-ms", "240000")
        secs = time.monotonic() - t0
        after = wait_for("every partition with 3 replicas in the ISR",
                         lambda: (lambda ps: ps if all(len(r) == 3 and set(i) == set(r)
                                                       for _l, r, i in ps.values()) else None)(
                             partitions(bs)), 120, 0.5)
        log("after: %s" % after)
        status = cli(bs, "partitions", "status")
        check("Reassignments in progress: 0" in status, "a reassignment is still listed")
        if throttled:
            sent = sum(b.metrics().get("tributary_reassignment_throttled_bytes_total", 0)
                       for b in cl.brokers.values() if b.alive())
            log("throttled bytes counted by the leaders still up: %d" % sent)
            check(sent > 0, "no leader counted bytes under the throttle")
        seen = read_all(bs)
        missing = set(acked) - seen
        check(not missing, "%d acknowledged records not read back (e.g. %s)"
              % (len(missing), sorted(missing)[:5]))
        data_bytes = RECORDS * RECORD * 2  # two new copies of every record
        for b in cl.brokers.values():
            b.kill("TERM")
        p = subprocess.run([REPLICA_CHECK, "--topic", TOPIC] + [b.data for b in
                                                              cl.brokers.values()],
                           capture_output=True, text=True, timeout=120)
        log("replica check: exit %d\n%s%s" % (p.returncode, p.stdout[-1500:], p.stderr[-1500:]))
        check(p.returncode == 0, "the replicas differ after the %s reassignment" % name)
        fig = ("%s reassignment (replication factor 1 -> 3, %d MiB to copy): %.1f s, "
               "%.2f MiB/s%s; load %.2f"
               % (name, data_bytes >> 20, secs, data_bytes / 2**20 / max(secs, 0.001),
                  " (throttle %d MiB/s per leader, a controller kill included)"
                  % (THROTTLE >> 20) if throttled else "", os.getloadavg()[0]))
        return fig


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise Skip("confluent-kafka is not installed")
    figs = [one_run(False), one_run(True)]
    for f in figs:
        log("figure: %s" % f)


if __name__ == "__main__":
    run(main)
