#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Kafka error codes, each on the same connection, which stays usable.

Batches are built by kafka-python (an independent record-batch
implementation) and sent raw, so the test sees exactly what the collector
answers: UNKNOWN_TOPIC_OR_PARTITION (3) for a partition that does not
exist, MESSAGE_TOO_LARGE (10) above max.message.bytes, CORRUPT_MESSAGE (2)
for a bad CRC, a truncated batch and a magic-1 batch, INVALID_REQUIRED_ACKS
(21), UNSUPPORTED_VERSION (35) for Produce v2 (advertised for librdkafka's
compression gate, refused as Kafka 4.0 does), INVALID_TXN_STATE (48) for a
transactional produce, OFFSET_OUT_OF_RANGE (1) on fetch, and CreateTopics'
INVALID_REQUEST (42, a name twice), INVALID_REPLICATION_FACTOR (38),
INVALID_CONFIG (40), TOPIC_ALREADY_EXISTS (36), INVALID_TOPIC_EXCEPTION
(17). A request mixing a good and a bad partition gets both answers, and
the good data is stored. After every error the same connection answers
ApiVersions.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka.record.legacy_records import LegacyRecordBatchBuilder  # noqa: E402
from kafka_raw import Conn, array, batch, count_records, s16, s32, string  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: got %r, expected %r" % (what, got, want))
    log("%s: %r" % (what, got))


def main(c):
    conn = Conn(c.bootstrap)

    def usable():
        if 18 not in conn.api_versions():
            raise TestFailure("the connection stopped answering")

    expect("create errs", conn.create_topic("errs", 2, configs={"max.message.bytes": "2000"}),
           (0, None))
    good = batch(5, "good")
    expect("produce ok", conn.produce("errs", 0, good), (0, 0))
    expect("unknown partition", conn.produce("errs", 7, good)[0], 3)
    usable()
    expect("too large", conn.produce("errs", 0, batch(3, "big", value_size=1500))[0], 10)
    usable()
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    expect("bad CRC", conn.produce("errs", 0, bytes(bad))[0], 2)
    usable()
    expect("truncated batch", conn.produce("errs", 0, good[:-7])[0], 2)
    usable()
    legacy = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    legacy.append(0, timestamp=1700000000000, key=b"k", value=b"v")
    expect("magic 1 batch", conn.produce("errs", 0, bytes(legacy.build()))[0], 2)
    usable()
    expect("acks=5", conn.produce("errs", 0, good, acks=5)[0], 21)
    usable()
    expect("Produce v2", conn.produce("errs", 0, good, version=2)[0], 35)
    usable()
    res = conn.produce_many({"errs": {0: good}}, acks=1, version=7, txn="my-txn")
    expect("transactional id", res[("errs", 0)][0], 48)
    usable()
    txn_batch = bytearray(good)
    # Set the transactional attribute bit and fix the CRC with kafka-python's own builder.
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True,
                                  producer_id=5, producer_epoch=0, base_sequence=0,
                                  batch_size=1 << 20)
    b.append(0, timestamp=1700000000000, key=b"k", value=b"v", headers=[])
    expect("transactional batch", conn.produce("errs", 0, bytes(b.build()))[0], 48)
    usable()
    expect("unknown topic name (auto-created)", conn.produce("fresh-topic", 0, good), (0, 0))
    expect("invalid topic name", conn.produce("no/slash", 0, good)[0], 17)
    usable()

    # One request, a good and a bad partition (acks=-1: answered once durable, so readable
    # at once with storage.fsync ack, where consumers read only what is on disk).
    res = conn.produce_many({"errs": {0: good, 1: bytes(bad)}}, acks=-1, version=7)
    expect("mixed: good partition", res[("errs", 0)], (0, 5))
    expect("mixed: bad partition", res[("errs", 1)][0], 2)
    err, hw, recs = conn.fetch("errs", 0, 0)
    expect("stored records", (err, hw, count_records(recs)), (0, 10, 10))
    expect("fetch past the end", conn.fetch("errs", 0, 11)[0], 1)
    expect("fetch unknown partition", conn.fetch("errs", 9, 0)[0], 3)
    expect("fetch unknown topic", conn.fetch("no-such-topic", 0, 0)[0], 3)
    usable()

    # Admin errors.
    body = array([string("twice") + s32(1) + s16(1) + array([]) + array([])] * 2)
    r = conn.call(19, 1, body + s32(1000) + b"\x00")
    res = r.array(lambda: (r.string(), r.i16(), r.string()))
    expect("create a name twice", [e for _, e, _ in res], [42, 42])
    expect("replication factor 3", conn.create_topic("rf3", 1, rf=3)[0], 38)
    expect("bad config value", conn.create_topic("badcfg", 1, configs={"segment.ms": "0"})[0], 40)
    expect("unknown config", conn.create_topic("badcfg", 1, configs={"no.such": "1"})[0], 40)
    expect("exists", conn.create_topic("errs", 1)[0], 36)
    expect("illegal name", conn.create_topic("a" * 250, 1)[0], 17)
    usable()
    conn.close()


if __name__ == "__main__":
    run_test(main)
