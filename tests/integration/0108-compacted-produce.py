#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Produce to compacted and internal topics is validated as Kafka does.

A compacted topic (cleanup.policy=compact) only takes records that parse
and carry a key, since its cleaner must read every record by key:

- kafka-python batches sent raw: a keyless record gets INVALID_RECORD (87)
  on Produce v8 with RecordErrors naming the record's index in the request
  (counted across batches) and an ErrorMessage; CORRUPT_MESSAGE (2) on v7;
  a gzip batch whose records do not decompress (valid CRC) and a keyless
  record inside a gzip batch get 87 too; nothing refused is stored. The
  same keyless batch on a topic with cleanup.policy=delete is stored.
- confluent-kafka, as a user meets it: a keyless message to the compacted
  topic fails its delivery report (librdkafka speaks Produce v7 here, so
  CORRUPT_MESSAGE), keyed ones are delivered and read back.
- Nobody but the collector writes __consumer_offsets: a raw produce and a
  confluent-kafka produce get INVALID_TOPIC_EXCEPTION (17), while a consumer
  group still commits offsets (the coordinator appends to it itself) and
  reads them back.
"""
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka.record.default_records import DefaultRecordBatchBuilder  # noqa: E402
from kafka.record.util import calc_crc32c  # noqa: E402
from kafka_raw import Conn, count_records  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402

GZIP = 1


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: got %r, expected %r" % (what, got, want))
    log("%s: %r" % (what, got))


def build(keys, codec=0, tag="v"):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 30)
    for i, k in enumerate(keys):
        b.append(i, timestamp=1700000000000 + i, key=k, value=b"%s-%d" % (tag.encode(), i),
                 headers=[])
    return bytes(b.build())


def spoil_records(data):
    """Flips a byte inside the (compressed) records and fixes the CRC: a valid batch header."""
    d = bytearray(data)
    d[len(d) // 2 + 30] ^= 0x5A
    struct.pack_into(">I", d, 17, calc_crc32c(bytes(d[21:])))
    return bytes(d)


def stored(conn, topic, want):
    """Records readable in partition 0, waiting (bounded) for `want`: with
    storage.fsync ack consumers read what is durable, one group-commit fsync
    after an acks=1 answer."""
    deadline = time.monotonic() + 20
    while True:
        err, hw, data = conn.fetch(topic, 0, 0)[:3]
        if err != 0:
            raise TestFailure("fetch %s: error %d" % (topic, err))
        n = count_records(data)
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def raw_checks(conn):
    expect("create compacted topic", conn.create_topic("cmp", 1,
                                                       configs={"cleanup.policy": "compact"}),
           (0, None))
    expect("create delete topic", conn.create_topic("plain", 1), (0, None))
    good = build([b"a", b"b", b"c"])
    expect("keyed batch, v8", conn.produce("cmp", 0, good, version=8), (0, 0))
    keyless = build([b"a", None, b"c"])
    expect("keyless record, v8", conn.produce("cmp", 0, keyless, version=8)[0], 87)
    (recs, msg) = conn.record_errors[("cmp", 0)]
    expect("RecordErrors", [i for i, _ in recs], [1])
    if not msg or "key" not in msg:
        raise TestFailure("ErrorMessage does not say why: %r" % msg)
    log("ErrorMessage: %r" % msg)
    expect("keyless record, v7", conn.produce("cmp", 0, keyless, version=7)[0], 2)
    # Two batches in one request: the faulty record is the first of the second batch.
    expect("second batch keyless, v8",
           conn.produce("cmp", 0, good + build([None, b"x"]), version=8)[0], 87)
    expect("index across batches", [i for i, _ in conn.record_errors[("cmp", 0)][0]], [3])
    expect("keyless in a gzip batch", conn.produce("cmp", 0, build([b"a", None], GZIP),
                                                   version=8)[0], 87)
    gz = build([b"k%d" % i for i in range(50)], GZIP)
    expect("gzip keyed batch", conn.produce("cmp", 0, gz, version=8), (0, 3))
    expect("gzip records that do not decompress",
           conn.produce("cmp", 0, spoil_records(gz), version=8)[0], 87)
    expect("records stored in the compacted topic", stored(conn, "cmp", 53), 53)
    expect("keyless batch to a delete topic", conn.produce("plain", 0, keyless, version=8),
           (0, 0))
    expect("produce to __consumer_offsets", conn.produce("__consumer_offsets", 0, good,
                                                         version=8)[0], 17)
    expect("produce to __consumer_offsets, v3", conn.produce("__consumer_offsets", 0, good,
                                                             version=3)[0], 17)


def client_checks(c):
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    results = []

    def report(err, msg):
        results.append((err.code() if err else 0, msg.key()))

    p = Producer({"bootstrap.servers": c.bootstrap, "message.timeout.ms": 20000,
                  "retries": 0, "linger.ms": 0})
    p.produce("cmp", key=b"user-1", value=b"first", on_delivery=report)
    p.flush(30)
    p.produce("cmp", value=b"no key", on_delivery=report)
    p.flush(30)
    p.produce("cmp", key=b"user-2", value=b"second", on_delivery=report)
    p.flush(30)
    p.produce("__consumer_offsets", key=b"x", value=b"y", partition=0, on_delivery=report)
    p.flush(30)
    log("delivery reports: %r" % results)
    expect("keyed message delivered", results[0], (0, b"user-1"))
    if results[1][0] not in (87, 2):  # INVALID_RECORD, or CORRUPT_MESSAGE before v8
        raise TestFailure("keyless message to a compacted topic: %r" % (results[1],))
    expect("second keyed message delivered", results[2], (0, b"user-2"))
    expect("message to __consumer_offsets", results[3][0], KafkaError.TOPIC_EXCEPTION)

    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g-cmp",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        cons.assign([TopicPartition("cmp", 0)])
        got = []
        for _ in range(200):
            m = cons.poll(0.2)
            if m is not None and not m.error():
                got.append(m.key())
                if m.key() == b"user-2":
                    break
        if b"user-1" not in got or b"user-2" not in got or None in got:
            raise TestFailure("read back from cmp: %r" % got)
        cons.commit(message=m, asynchronous=False)
        committed = cons.committed([TopicPartition("cmp", 0)], timeout=10)
        expect("offset committed through the group store", committed[0].offset, m.offset() + 1)
    finally:
        cons.close()


def metrics_checks(c):
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        text = r.read().decode()
    for name in ("tributary_cleaner_unreadable_batches_total", "tributary_cleaner_failures_total"):
        if "\n%s 0\n" % name not in text:
            raise TestFailure("metric %s missing or not 0" % name)
    log("cleaner metrics present: nothing unreadable got in")


def main(c):
    conn = Conn(c.bootstrap)
    raw_checks(conn)
    client_checks(c)
    metrics_checks(c)
    conn.close()


if __name__ == "__main__":
    run_test(main)
