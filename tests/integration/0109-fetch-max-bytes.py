#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""server.fetch_max_bytes caps a Fetch's MaxBytes (Kafka's fetch.max.bytes).

With fetch_max_bytes 4KiB, a fetch asking MaxBytes 50 MiB and
PartitionMaxBytes 1 MiB over batches of about 1 KiB returns at most 4 KiB
of whole batches, and the consumer still reads everything by fetching on
from the next offset. A batch larger than the cap is returned whole when it
comes first (Kafka's progress rule), alone. A kafka-python consumer asking
the default fetch_max_bytes (50 MiB) reads every record. (Produced with acks=-1: with storage.fsync ack
consumers read only what is durable, and acks=-1 is answered once it is.)
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, batch  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402

CAP = 4096


def batches(data):
    """(base offset, records, size) of each whole batch."""
    import struct
    out, pos = [], 0
    while pos + 61 <= len(data):
        base = struct.unpack_from(">q", data, pos)[0]
        length = struct.unpack_from(">i", data, pos + 8)[0]
        if pos + 12 + length > len(data):
            break
        out.append((base, struct.unpack_from(">i", data, pos + 57)[0], 12 + length))
        pos += 12 + length
    return out


def main(c):
    conn = Conn(c.bootstrap)
    expect_ok = conn.create_topic("fm", 1)
    if expect_ok != (0, None):
        raise TestFailure("create topic: %r" % (expect_ok,))
    for i in range(12):
        err, _ = conn.produce("fm", 0, batch(4, "b%d" % i, value_size=250), acks=-1)
        if err:
            raise TestFailure("produce: %d" % err)
    big = batch(4, "big", value_size=3000)  # about 12 KiB, three times the cap
    if conn.produce("fm", 0, big, acks=-1)[0] != 0:
        raise TestFailure("produce big batch failed")
    if conn.produce("fm", 0, batch(4, "after", value_size=250), acks=-1)[0] != 0:
        raise TestFailure("produce failed")
    total = 14 * 4

    offset, got, rounds = 0, 0, 0
    while offset < total and rounds < 100:
        rounds += 1
        err, hw, data = conn.fetch("fm", 0, offset, part_max=1 << 20, max_bytes=50 << 20)
        if err:
            raise TestFailure("fetch at %d: error %d" % (offset, err))
        bs = batches(data)
        if not bs:
            raise TestFailure("fetch at %d returned no batch" % offset)
        if len(data) > CAP and len(bs) != 1:
            raise TestFailure("fetch at %d: %d bytes in %d batches, above fetch_max_bytes %d"
                              % (offset, len(data), len(bs), CAP))
        if len(data) > CAP:
            log("fetch at %d: one batch of %d bytes, larger than the cap, returned whole"
                % (offset, len(data)))
        got += sum(n for _, n, _ in bs)
        offset = bs[-1][0] + bs[-1][1]
    if got != total or offset != total:
        raise TestFailure("read %d records up to offset %d, expected %d" % (got, offset, total))
    log("read %d records in %d fetches of at most %d bytes (but the large batch)"
        % (got, rounds, CAP))
    if rounds < 4:
        raise TestFailure("only %d fetches: the cap did not apply" % rounds)
    conn.close()

    from kafka import KafkaConsumer, TopicPartition
    cons = KafkaConsumer(bootstrap_servers=c.bootstrap, auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=10000,
                         api_version=(2, 5))
    try:
        cons.assign([TopicPartition("fm", 0)])
        n = 0
        for m in cons:
            n += 1
            if n == total:
                break
        if n != total:
            raise TestFailure("kafka-python read %d of %d records" % (n, total))
        log("kafka-python read all %d records" % n)
    finally:
        cons.close()


if __name__ == "__main__":
    d = tempfile.mkdtemp(prefix="trib-0109.")
    conf = os.path.join(d, "collector.yaml")
    with open(conf, "w") as f:
        f.write("server:\n  fetch_max_bytes: %d\n" % CAP)
    try:
        run_test(main, extra_args=["--config", conf])
    finally:
        shutil.rmtree(d, ignore_errors=True)
