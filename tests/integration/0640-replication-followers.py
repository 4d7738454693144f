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
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import log  # noqa: E402
from replication_scenario import (batches, metric, need_confluent_kafka, same_logs,  # noqa: E402
                                  start_topic, state)
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "rep"


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
    need_confluent_kafka()
    from confluent_kafka import Producer
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        ids = start_topic(cl, TOPIC, 2)
        brokers = [cl.broker(i) for i in ids]
        zk = cl.zk.reader()
        try:
            wait_for("both partitions led", lambda: all(
                (state(zk, TOPIC, p) or {}).get("leader", -1) > 0 for p in (0, 1)), BOUND)

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
                st = state(zk, TOPIC, p)
                leader = cl.broker(st["leader"])
                hw = metric(leader, "tributary_partition_high_watermark", topic=TOPIC,
                            partition=p)
                check(hw and hw > 0, "partition %d: leader's HW %s" % (p, hw))
                wait_for("partition %d: three identical logs up to %d" % (p, hw),
                         lambda: same_logs(brokers, TOPIC, int(hw), p), BOUND)
                for i in ids:
                    wait_for("broker %d reports partition %d's HW %d" % (i, p, hw),
                             lambda: metric(cl.broker(i), "tributary_partition_high_watermark",
                                            topic=TOPIC, partition=p) == hw, BOUND)
                log("partition %d: %d batches, identical on brokers %s, HW %d"
                    % (p, len(batches(leader, TOPIC, p)), ids, hw))

            # 2. The leader of partition 0 dies while a producer keeps going.
            st0 = state(zk, TOPIC, 0)
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
                wait_for("a new leader for partition 0", lambda: (
                    lambda s: s and s["leader"] not in (-1, victim) and s)(state(zk, TOPIC, 0)),
                         BOUND)
                n_at_failover = len(acked2)
                wait_for("acks after the failover", lambda: len(acked2) > n_at_failover + 200,
                         BOUND)

                # 3. The killed broker comes back at once and rejoins.
                cl.broker(victim).start()
                wait_for("broker %d back in partition 0's ISR" % victim,
                         lambda: victim in (state(zk, TOPIC, 0) or {}).get("isr", []), BOUND)
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

            st0 = state(zk, TOPIC, 0)
            new_leader = cl.broker(st0["leader"])
            hw0 = metric(new_leader, "tributary_partition_high_watermark", topic=TOPIC,
                         partition=0)
            wait_for("partition 0: three identical logs after the rejoin", lambda: same_logs(
                brokers, TOPIC, int(metric(new_leader, "tributary_partition_high_watermark",
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
                    if state(zk, TOPIC, p)["leader"] != i:
                        wait_for("broker %d's lag on partition %d back to 0" % (i, p),
                                 lambda: metric(b, "tributary_replica_follower_lag", topic=TOPIC,
                                                partition=p,
                                                leader=state(zk, TOPIC, p)["leader"]) == 0,
                                 BOUND)
            log("truncations: %s" % {i: metric(cl.broker(i), "tributary_replica_truncations_total")
                                     for i in ids})
        finally:
            zk.close()


if __name__ == "__main__":
    run(main)
