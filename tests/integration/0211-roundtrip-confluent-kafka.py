#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""python3-confluent-kafka (1.7.0 on the system librdkafka 2.0.2) round trips:
10,000 keyed records into a 6-partition topic with each codec librdkafka
has (none, gzip, snappy, lz4, zstd), from an idempotent producer whose every
delivery report must succeed; a consumer with manual assignment (assign(),
no subscribe) reads every record exactly once with per-key order kept.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import (TestFailure, broker_advertises, check_records,  # noqa: E402
                               expect_codec, log, make_records, run_test)

N_KEYS, PER_KEY, PARTITIONS = 100, 100, 6


def roundtrip(c, codec):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    topic = "ck-" + codec
    c.cli("topics", "create", "--topic", topic, "--partitions", str(PARTITIONS))
    errors = []
    acked = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    p = Producer({"bootstrap.servers": c.bootstrap, "compression.type": codec,
                  "enable.idempotence": True, "linger.ms": 5})
    records = make_records(N_KEYS, PER_KEY)
    for k, v in records:
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    if left or errors or acked[0] != len(records):
        raise TestFailure("%s: %d undelivered, %d acked, errors %s"
                          % (topic, left, acked[0], errors[:5]))

    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "unused-manual-assignment",
                     "enable.auto.commit": False, "enable.partition.eof": False})
    cons.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < len(records) and time.monotonic() < deadline:
        for m in cons.consume(num_messages=1000, timeout=0.5):
            if m.error():
                raise TestFailure("%s: consumer error %s" % (topic, m.error()))
            got.append((m.key(), m.value()))
    # Nothing more than the 10,000 arrives.
    extra = cons.consume(num_messages=10, timeout=0.5)
    got += [(m.key(), m.value()) for m in extra if not m.error()]
    cons.close()
    problems = check_records(got, N_KEYS, PER_KEY)
    if problems:
        raise TestFailure("%s: %s" % (topic, "; ".join(problems[:5])))
    if codec == "lz4" and not broker_advertises(c, 10, 0):
        # librdkafka 2.0.2 enables LZ4 only when FindCoordinator v0 is advertised.
        log("KNOWN: the broker does not advertise FindCoordinator v0, so librdkafka 2.0.2 "
            "switches lz4 off and sends these batches uncompressed (kafka-clients.md 1b)")
        expect_codec(c, topic, "none")
    else:
        expect_codec(c, topic, codec)
    log("%s: %d records exactly once, per-key order kept" % (topic, len(got)))


def main(c):
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        roundtrip(c, codec)


if __name__ == "__main__":
    run_test(main)
