# SPDX-License-Identifier: Apache-2.0
"""Follower replication on the zookeeper backend: every replica holds the same batches.

One ZooKeeper and three collectors. Topic `rep` (2 partitions, replication
factor 3, min.insync.replicas 2). Checks:
  1. confluent-kafka produces 4000 keyed records with acks=all and
     idempotence; every one is acknowledged, and afterwards every broker's
     log of each partition holds the same batches (offset, length, CRC and
     bytes, read from the segment files in each data directory) up to the
     leader's high watermark, which every follower also reports;
  2. the leader of partition 0 is SIGKILLed while a producer keeps
     producing acks=all: every record acknowledged before, during and
     after the failover is in the new leader's log exactly once (the
     producer's idempotent retries are deduplicated by the new leader,
     whose producer state came from the replicated batches);
  3. the killed broker restarts at once (faster than its session timeout)
     and rejoins: it truncates what it must by leader epoch, catches up,
     is back in the ISR, and the three logs are again identical;
  4. the followers' metrics show the lag back at 0 and no invalid batches.
Every wait is bounded; every process stops however the test ends.
"""
import glob
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "rep"


def state(zk, p):
    s = zk.get_json(CHROOT + "/brokers/topics/%s/partitions/%d/state" % (TOPIC, p))
    return s[0] if s else None


def batches(broker, p):
    """[(base offset, last offset, crc, bytes)] of every batch in the partition's segment files."""
    out = []
    d = os.path.join(broker.data, "%s-%d" % (TOPIC, p))
    for path in sorted(glob.glob(os.path.join(d, "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at + 61 <= len(data):
            base, length = struct.unpack(">qi", data[at:at + 12])
            if length <= 0 or at + 12 + length > len(data):
                break  # a preallocated or torn tail: not a batch
            raw = data[at:at + 12 + length]
            delta = struct.unpack(">i", raw[23:27])[0]
            crc = struct.unpack(">I", raw[17:21])[0]
            out.append((base, base + delta, crc, raw))
            at += 12 + length
    return out


def metric(b, name, **labels):
    """A sample with exactly these labels, or None."""
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % b.metrics_addr, timeout=5) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    key = "%s{%s}" % (name, want) if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def same_logs(cl, ids, p, upto):
    """True when every broker in ids holds the same batches below `upto` and no more."""
    ref = None
    for i in ids:
        bs = [x for x in batches(cl.broker(i), p) if x[0] < upto]
        if not bs or bs[-1][1] + 1 != upto:
            return False
        if ref is None:
            ref = bs
        elif bs != ref:
            return False
    return True


def log_end(b, p):
    return metric(b, "tributary_partition_log_end_offset", topic=TOPIC, partition=p)


def records_in(broker, p):
    """{value: count} of every record of the partition in broker's segment files."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check-%d" % time.time(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        hw = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=15)[1]
        c.assign([TopicPartition(TOPIC, p, 0)])
        seen = {}
        deadline = time.monotonic() + 60
        pos = 0
        while pos < hw and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            seen[m.value()] = seen.get(m.value(), 0) + 1
            pos = m.offset() + 1
        check(pos >= hw, "could not read partition %d up to %d (at %d)" % (p, hw, pos))
        return seen
    finally:
        c.close()


def main():
    try:
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        raise Skip("confluent-kafka is missing")
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        cl.wait_controller(ids)
        a = AdminClient({"bootstrap.servers": cl.bootstrap(), "socket.timeout.ms": 10000})
        fs = a.create_topics([NewTopic(TOPIC, 2, 3, config={"min.insync.replicas": "2"})],
                             request_timeout=60)
        fs[TOPIC].result(timeout=90)
        zk = cl.zk.reader()
        try:
            wait_for("both partitions led", lambda: all(
                (state(zk, p) or {}).get("leader", -1) > 0 for p in (0, 1)), BOUND)

            # 1. acks=all with idempotence; every replica ends with the same batches.
            acked, failed = [], []

            def cb(err, msg):
                (failed if err else acked).append((err, msg.partition(), msg.value()))
            pr = Producer({"bootstrap.servers": cl.bootstrap(), "acks": "all",
                           "enable.idempotence": True, "linger.ms": 5,
                           "message.timeout.ms": 120000})
            for i in range(4000):
                pr.produce(TOPIC, key=b"k%d" % (i % 50), value=b"first-%d" % i, callback=cb)
                if i % 100 == 0:
                    pr.flush(60)  # many batches
            left = pr.flush(120)
            check(left == 0 and not failed and len(acked) == 4000,
                  "first run: %d acknowledged, %d failed (%s), %d left"
                  % (len(acked), len(failed), failed[:3], left))
            for p in (0, 1):
                st = state(zk, p)
                leader = cl.broker(st["leader"])
                hw = metric(leader, "tributary_partition_high_watermark", topic=TOPIC,
                            partition=p)
                check(hw and hw > 0, "partition %d: leader's HW %s" % (p, hw))
                wait_for("partition %d: three identical logs up to %d" % (p, hw),
                         lambda: same_logs(cl, ids, p, int(hw)), BOUND)
                for i in ids:
                    wait_for("broker %d reports partition %d's HW %d" % (i, p, hw),
                             lambda: metric(cl.broker(i), "tributary_partition_high_watermark",
                                            topic=TOPIC, partition=p) == hw, BOUND)
                log("partition %d: %d batches, identical on brokers %s, HW %d"
                    % (p, len(batches(leader, p)), ids, hw))

            # 2. The leader of partition 0 dies while a producer keeps going.
            st0 = state(zk, 0)
            victim = st0["leader"]
            log("partition 0: leader %d, epoch %d, isr %s" % (victim, st0["leader_epoch"],
                                                             st0["isr"]))
            acked2, failed2 = [], []

            def cb2(err, msg):
                (failed2 if err else acked2).append(msg.value())
            stop = threading.Event()

            def produce_loop():
                try:
                    # The same idempotent producer: on this cluster every broker hands out
                    # producer ids from its own counter (no ZooKeeper blocks yet), so a
                    # second producer could get the first one's id.
                    p2 = pr
                    n = 0
                    while not stop.is_set() and n < 100000:
                        for _ in range(20):
                            p2.produce(TOPIC, value=b"second-%d" % n, partition=0,
                                       callback=cb2)
                            n += 1
                        p2.poll(0.05)
                    produce_loop.left = p2.flush(150)
                except Exception as e:  # reported by the main thread
                    produce_loop.error = repr(e)
            produce_loop.error = None
            produce_loop.left = None
            t = threading.Thread(target=produce_loop)
            t.start()
            try:
                wait_for("acks before the kill", lambda: len(acked2) > 200 or produce_loop.error,
                         BOUND)
                check(produce_loop.error is None, "the producer failed: %s" % produce_loop.error)
                cl.broker(victim).kill("KILL")
                wait_for("a new leader for partition 0", lambda: (lambda s: s and s["leader"] not in
                                                                  (-1, victim) and s)(state(zk, 0)),
                         BOUND)
                n_at_failover = len(acked2)
                wait_for("acks after the failover", lambda: len(acked2) > n_at_failover + 200,
                         BOUND)

                # 3. The killed broker comes back at once and rejoins.
                cl.broker(victim).start()
                wait_for("broker %d back in partition 0's ISR" % victim,
                         lambda: victim in (state(zk, 0) or {}).get("isr", []), BOUND)
                n_back = len(acked2)
                wait_for("acks after the rejoin", lambda: len(acked2) > n_back + 100, BOUND)
            finally:
                stop.set()
                t.join(200)
            check(not t.is_alive(), "the producer did not finish")
            check(produce_loop.error is None, "the producer failed: %s" % produce_loop.error)
            check(produce_loop.left == 0, "%s records not delivered" % produce_loop.left)
            check(not failed2, "%d records failed" % len(failed2))
            log("second run: %d records acknowledged across the failover" % len(acked2))

            st0 = state(zk, 0)
            new_leader = cl.broker(st0["leader"])
            hw0 = metric(new_leader, "tributary_partition_high_watermark", topic=TOPIC,
                         partition=0)
            wait_for("partition 0: three identical logs after the rejoin", lambda: same_logs(
                cl, ids, 0, int(metric(new_leader, "tributary_partition_high_watermark",
                                       topic=TOPIC, partition=0))), BOUND)
            seen = records_in(new_leader, 0)
            lost = [v for v in acked2 if v not in seen]
            dups = [v for v, k in seen.items() if k > 1]
            check(not lost, "%d acknowledged records lost, e.g. %s" % (len(lost), lost[:3]))
            check(not dups, "%d records twice, e.g. %s" % (len(dups), dups[:3]))
            first0 = [v for (_, p, v) in acked if p == 0]
            lost1 = [v for v in first0 if v not in seen]
            check(not lost1, "%d records of the first run lost" % len(lost1))
            log("partition 0: HW %d, every acknowledged record once" % hw0)

            # 4. Followers' metrics.
            for i in ids:
                b = cl.broker(i)
                check(metric(b, "tributary_replica_invalid_batches_total") in (0.0, None),
                      "broker %d refused fetched batches" % i)
                for p in (0, 1):
                    if state(zk, p)["leader"] != i:
                        wait_for("broker %d's lag on partition %d back to 0" % (i, p),
                                 lambda: metric(b, "tributary_replica_follower_lag", topic=TOPIC,
                                                partition=p, leader=state(zk, p)["leader"]) == 0,
                                 BOUND)
            log("truncations: %s" % {i: metric(cl.broker(i), "tributary_replica_truncations_total")
                                     for i in ids})
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
