#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""python3-kafka (kafka-python 2.0.2) through broker faults on a replicated
cluster (0689_failoverlib.py): an acks=all producer (kafka-python has no
idempotent producer: one request in flight and retries, so a retried batch
may be stored twice, which is counted, not failed) and a consumer with
manual assignment from the beginning, through a dead first bootstrap
broker, a leader SIGKILL and a leader's controlled shutdown; nothing
acknowledged is lost.
"""
import importlib.util
import os
import threading
import time

spec = importlib.util.spec_from_file_location(
    "failoverlib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0689_failoverlib.py"))
fl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fl)


class Producer:
    def __init__(self, bootstrap, topic, recs):
        from kafka import KafkaProducer
        self.acked, self.errors = [], []
        self.lock = threading.Lock()
        # retries without limit (kafka-python 2.0.2 has no delivery timeout): the
        # client keeps trying through a failover as long as the test lets it.
        self.p = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5,
                               retries=1000000, retry_backoff_ms=200,
                               max_in_flight_requests_per_connection=1,
                               request_timeout_ms=30000)

        def send(k, v):
            f = self.p.send(topic, key=k, value=v)
            f.add_callback(lambda md, v=v: self.ok(v))
            f.add_errback(lambda e: self.fail(e))
        self.pace = fl.Paced(recs, send)

    def ok(self, v):
        with self.lock:
            self.acked.append(v)

    def fail(self, e):
        with self.lock:
            self.errors.append("%s: %s" % (type(e).__name__, e))

    def progress(self):
        return self.pace.sent

    def finish(self, timeout):
        deadline = time.monotonic() + timeout
        err = self.pace.join(timeout)
        timeout = max(1, deadline - time.monotonic())
        if err:
            return None, err
        self.p.flush(timeout)
        self.p.close(timeout)
        if self.errors:
            return None, "delivery errors %s" % self.errors[:5]
        return list(self.acked), None


class Consumer:
    def __init__(self, bootstrap, topic, n):
        from kafka import KafkaConsumer, TopicPartition
        self.got, self.n = [], n
        self.c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                               group_id=None, auto_offset_reset="earliest",
                               request_timeout_ms=30000)
        tps = [TopicPartition(topic, i) for i in range(fl.PARTITIONS)]
        self.c.assign(tps)
        self.c.seek_to_beginning(*tps)
        self.stop = False
        self.error = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        # The producer is not idempotent: a retried batch may be stored twice, so the
        # consumer reads until it has seen n different values, not n records.
        seen = set()
        try:
            while not self.stop and len(seen) < self.n:
                for recs in self.c.poll(timeout_ms=200).values():
                    self.got.extend(r.value for r in recs)
                    seen.update(r.value for r in recs)
        except BaseException as e:  # noqa: B902 - reported by finish()
            self.error = "%s: %s" % (type(e).__name__, e)

    def finish(self, timeout):
        deadline = time.monotonic() + timeout
        while self.t.is_alive() and time.monotonic() < deadline:
            self.t.join(0.2)
        self.stop = True
        self.t.join()
        self.c.close()
        if self.error:
            return self.got, self.error
        if len(set(self.got)) < self.n:
            return self.got, "read %d of %d different records in %ds" % (
                len(set(self.got)), self.n, timeout)
        return self.got, None


class Driver:
    name = "kp"
    idempotent = False

    def available(self):
        try:
            import kafka  # noqa: F401
        except ImportError:
            raise fl.Skip("python3-kafka is not installed")

    def producer(self, bootstrap, topic, recs):
        return Producer(bootstrap, topic, recs)

    def consumer(self, bootstrap, topic, n):
        return Consumer(bootstrap, topic, n)


fl.run_client_test(Driver())
