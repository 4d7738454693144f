#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Every acknowledged record survives the collector dying mid-stream.

A python3-confluent-kafka producer streams keyed records into a 4-partition
topic from a background thread; once a few thousand are acknowledged the
collector is stopped in the middle of the stream, the producer gives up on
what is in flight, and the collector is restarted on the same data
directory. A consumer (manual assignment) then reads every partition to its
high watermark. Every record whose delivery report said "delivered" must be
there, once, in per-key order.

  round 1: acks=all, idempotent, SIGKILL  (durable before acknowledged)
  round 2: acks=1, SIGKILL                (page cache survives a killed process)
  round 3: acks=all, SIGTERM              (graceful stop with requests in flight, exit 0)

Each round appends to what the previous rounds left, so recovery after
each stop is checked against everything acknowledged so far.
"""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

TOPIC = "kill-stream"
PARTITIONS = 4
KEYS = 40


class Stream(threading.Thread):
    def __init__(self, bootstrap, conf, round_no):
        super().__init__(daemon=True)
        from confluent_kafka import Producer
        self.p = Producer(dict({"bootstrap.servers": bootstrap, "linger.ms": 2,
                                "message.timeout.ms": 4000, "retry.backoff.ms": 50}, **conf))
        self.round = round_no
        self.acked = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def on_delivery(self, err, msg):
        if err is None:
            with self.lock:
                self.acked.append((msg.key(), msg.value()))

    def run(self):
        seq = 0
        while not self.stop.is_set() and seq < 500000:
            for k in range(KEYS):
                key = b"key-%d" % k
                try:
                    self.p.produce(TOPIC, key=key, value=b"r%d-key-%d-%d" % (self.round, k, seq),
                                   on_delivery=self.on_delivery)
                except BufferError:
                    self.p.poll(0.05)
            seq += 1
            self.p.poll(0)
        self.p.flush(10)

    def count(self):
        with self.lock:
            return len(self.acked)


def consume_all(c):
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "unused",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    out = []
    for p in range(PARTITIONS):
        lo, hi = cons.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
        if hi <= lo:
            continue
        cons.assign([TopicPartition(TOPIC, p, lo)])
        n, deadline = 0, time.monotonic() + 60
        while n < hi - lo:
            if time.monotonic() > deadline:
                raise TestFailure("partition %d: read %d of %d records" % (p, n, hi - lo))
            for m in cons.consume(5000, timeout=0.5):
                if m.error():
                    raise TestFailure("consume: %s" % m.error())
                if m.offset() < hi:
                    out.append((m.key(), m.value()))
                    n += 1
    cons.close()
    return out


def check(all_acked, consumed, idempotent_rounds):
    seen = {}
    for k, v in consumed:
        seen[(k, v)] = seen.get((k, v), 0) + 1
    missing = [x for x in all_acked if x not in seen]
    if missing:
        raise TestFailure("%d acknowledged records lost, e.g. %r" % (len(missing), missing[:3]))
    dups = [x for x, n in seen.items() if n > 1 and x[1].split(b"-", 1)[0] in idempotent_rounds]
    if dups:
        raise TestFailure("%d duplicates from idempotent rounds, e.g. %r" % (len(dups), dups[:3]))
    # Per-key order within each round.
    last = {}
    for k, v in consumed:
        rnd, _, rest = v.partition(b"-")
        seq = int(rest.rsplit(b"-", 1)[1])
        if (k, rnd) in last and seq < last[(k, rnd)]:
            raise TestFailure("order: %r %r after seq %d" % (k, v, last[(k, rnd)]))
        last[(k, rnd)] = seq


def main(c):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    fut = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC]
    fut.result(30)
    rounds = [({"acks": "all", "enable.idempotence": True}, "KILL"),
              ({"acks": "1"}, "KILL"),
              ({"acks": "all", "enable.idempotence": True}, "TERM")]
    all_acked = []
    idempotent = set()
    for i, (conf, sig) in enumerate(rounds, 1):
        if conf.get("enable.idempotence"):
            idempotent.add(b"r%d" % i)
        s = Stream(c.bootstrap, conf, i)
        s.start()
        deadline = time.monotonic() + 60
        while s.count() < 3000:
            if time.monotonic() > deadline:
                raise TestFailure("round %d: only %d records acknowledged in 60 s" % (i, s.count()))
            time.sleep(0.02)
        c.stop(sig)  # mid-stream
        s.stop.set()
        s.join(30)
        acked = list(s.acked)
        all_acked += acked
        log("round %d (%s, SIG%s): %d records acknowledged before the stop"
            % (i, conf["acks"], sig, len(acked)))
        c.start()
        consumed = consume_all(c)
        check(all_acked, consumed, idempotent)
        log("round %d: all %d acknowledged records so far are stored (%d read)"
            % (i, len(all_acked), len(consumed)))


if __name__ == "__main__":
    run_test(main)
