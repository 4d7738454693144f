#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""acks 0, 1 and all with python3-confluent-kafka (librdkafka 2.0.2), then raw.

Each acks setting produces 3,000 keyed records into its own 3-partition
topic; every delivery report must succeed and the partitions must hold
exactly those records (counted by raw fetches, so no consumer logic can hide
a duplicate). Raw checks: acks=0 sends no response (the next response on
the connection is the next request's), an acks=0 request that fails closes
the connection (Kafka's way of telling an acks=0 producer), acks=-1 on a
topic with min.insync.replicas=2 gets NOT_ENOUGH_REPLICAS (19) on this
single node while acks=1 still works, and 50 pipelined acks=-1 requests come
back in order with consecutive offsets (group-committed fsyncs).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, batch, count_records  # noqa: E402
from tributary_harness import TestFailure, log, make_records, run_test  # noqa: E402

N_KEYS, PER_KEY = 100, 30


def produce(c, topic, acks):
    from confluent_kafka import Producer
    errors, acked = [], [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    p = Producer({"bootstrap.servers": c.bootstrap, "acks": str(acks), "linger.ms": 5})
    for k, v in make_records(N_KEYS, PER_KEY):
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    if left or errors:
        raise TestFailure("acks=%s: %d undelivered, errors %s" % (acks, left, errors[:3]))
    return acked[0]


def stored(c, topic, partitions, expected):
    """Records below the high watermarks, once they reach `expected` (or 60 s pass).

    With storage.fsync ack consumers read only what is durable, and acks 0
    and 1 are answered before that: the records become readable as the
    collector's fsync completes, so the count is taken again until it is
    complete (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        n = count_stored(c, topic, partitions)
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def count_stored(c, topic, partitions):
    conn = Conn(c.bootstrap)
    total = 0
    for p in range(partitions):
        off = 0
        while True:
            err, hw, recs = conn.fetch(topic, p, off)
            if err:
                raise TestFailure("fetch %s-%d: error %d" % (topic, p, err))
            if off >= hw:
                break
            n = count_records(recs)
            total += n
            off += n
    conn.close()
    return total


def main(c):
    conn = Conn(c.bootstrap)
    for acks in (0, 1, "all"):
        topic = "acks-%s" % acks
        err, _ = conn.create_topic(topic, 3)
        if err:
            raise TestFailure("create %s: %d" % (topic, err))
        acked = produce(c, topic, acks)
        n = stored(c, topic, 3, N_KEYS * PER_KEY)
        if n != N_KEYS * PER_KEY or acked != n:
            raise TestFailure("acks=%s: %d acknowledged, %d stored, %d expected"
                              % (acks, acked, n, N_KEYS * PER_KEY))
        log("acks=%s: %d records acknowledged and stored" % (acks, n))

    # acks=0 on the wire: nothing comes back; the next answer is the next request's.
    recs = batch(4, "a0")
    for _ in range(3):
        conn.produce("acks-raw", 0, recs, acks=0)
    if 3 not in conn.api_versions():
        raise TestFailure("the answer after acks=0 requests is not ApiVersions'")
    deadline = time.monotonic() + 60
    while True:
        # Readable once durable (storage.fsync ack): the high watermark follows the fsync.
        err, hw, _ = conn.fetch("acks-raw", 0, 0)
        if err or hw >= 12 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if (err, hw) != (0, 12):
        raise TestFailure("acks=0 records: fetch says error %d, high watermark %d" % (err, hw))
    conn.produce("acks-raw", 5, recs, acks=0)
    if not conn.closed_by_peer(5):
        raise TestFailure("a failed acks=0 produce did not close the connection")
    conn.close()
    log("acks=0: no responses; a failure closes the connection")

    conn = Conn(c.bootstrap)
    err, _ = conn.create_topic("minisr", 1, configs={"min.insync.replicas": "2"})
    if err:
        raise TestFailure("create minisr: %d" % err)
    got = conn.produce("minisr", 0, recs, acks=-1)
    if got[0] != 19:
        raise TestFailure("acks=-1 with min.insync.replicas=2: %r, expected error 19" % (got,))
    if conn.produce("minisr", 0, recs, acks=1) != (0, 0):
        raise TestFailure("acks=1 with min.insync.replicas=2 should succeed")
    log("min.insync.replicas=2: acks=-1 NOT_ENOUGH_REPLICAS, acks=1 fine")

    # Pipelined acks=-1: answered in order, consecutive offsets.
    corrs = []
    for i in range(50):
        data, corr = conn.frame(0, 7, _produce_body("pipe", 0, recs))
        conn.send_raw(data)
        corrs.append(corr)
    for i, corr in enumerate(corrs):
        r = conn.read_response(corr)
        r.i32()
        r.string()
        r.i32()
        p, err, base = r.i32(), r.i16(), r.i64()
        if err or base != i * 4:
            raise TestFailure("pipelined acks=-1 #%d: error %d, base %d" % (i, err, base))
    log("50 pipelined acks=-1 requests answered in order")
    conn.close()


def _produce_body(topic, partition, recs):
    from kafka_raw import array, nbytes, s16, s32, string
    return (string(None) + s16(-1) + s32(10000) +
            array([string(topic) + array([s32(partition) + nbytes(recs)])]))


if __name__ == "__main__":
    run_test(main)
