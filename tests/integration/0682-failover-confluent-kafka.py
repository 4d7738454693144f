#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""python3-confluent-kafka (librdkafka 2.0.2) through broker faults on a
replicated cluster (0689_failoverlib.py): an idempotent acks=all producer
(every delivery report is checked) and a consumer with manual assignment
from the beginning, through a dead first bootstrap broker, a leader SIGKILL
and a leader's controlled shutdown; nothing acknowledged is lost, nothing
is stored twice.
"""
import importlib.util
import os
import time

spec = importlib.util.spec_from_file_location(
    "failoverlib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0689_failoverlib.py"))
fl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fl)


class Producer:
    def __init__(self, bootstrap, topic, recs):
        from confluent_kafka import Producer as P
        self.acked, self.errors = [], []
        self.p = P({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                    "linger.ms": 5, "message.timeout.ms": fl.CLIENT_TIMEOUT * 1000})

        def on_delivery(err, msg):
            if err is None:
                self.acked.append(msg.value())
            else:
                self.errors.append(str(err))

        def send(k, v):
            while True:
                try:
                    self.p.produce(topic, key=k, value=v, on_delivery=on_delivery)
                    break
                except BufferError:
                    self.p.poll(0.05)
            self.p.poll(0)
        # produce() and poll() from the pacing thread only (one thread per producer call site)
        self.pace = fl.Paced(recs, send)

    def progress(self):
        return self.pace.sent

    def finish(self, timeout):
        deadline = time.monotonic() + timeout
        err = self.pace.join(timeout)
        timeout = max(1, deadline - time.monotonic())
        if err:
            return None, err
        left = self.p.flush(timeout)
        if left or self.errors:
            return None, "%d undelivered, delivery errors %s" % (left, self.errors[:5])
        return list(self.acked), None


class Consumer:
    def __init__(self, bootstrap, topic, n):
        import threading
        from confluent_kafka import OFFSET_BEGINNING, Consumer as C, TopicPartition
        self.got, self.errors, self.n = [], [], n
        self.c = C({"bootstrap.servers": bootstrap, "group.id": "unused-manual-assignment",
                    "enable.auto.commit": False, "enable.partition.eof": False})
        self.c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(fl.PARTITIONS)])
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop and len(self.got) < self.n:
            for m in self.c.consume(num_messages=500, timeout=0.2):
                if m.error():
                    self.errors.append(str(m.error()))
                else:
                    self.got.append(m.value())

    def finish(self, timeout):
        deadline = time.monotonic() + timeout
        while self.t.is_alive() and time.monotonic() < deadline:
            self.t.join(0.2)
        self.stop = True
        self.t.join()
        self.c.close()
        if len(self.got) < self.n:
            return self.got, "read %d of %d records in %ds (errors %s)" % (
                len(self.got), self.n, timeout, self.errors[:5])
        if self.errors:
            fl.log("confluent-kafka consumer reported (and went on): %s" % self.errors[:5])
        return self.got, None


class Driver:
    name = "ck"
    idempotent = True

    def available(self):
        try:
            import confluent_kafka  # noqa: F401
        except ImportError:
            raise fl.Skip("python3-confluent-kafka is not installed")

    def producer(self, bootstrap, topic, recs):
        return Producer(bootstrap, topic, recs)

    def consumer(self, bootstrap, topic, n):
        return Consumer(bootstrap, topic, n)


fl.run_client_test(Driver())
