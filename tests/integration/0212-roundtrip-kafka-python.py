#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""python3-kafka (kafka-python 2.0.2, pure Python) round trips: 10,000 keyed
records into a 6-partition topic with every codec kafka-python has here
(none, gzip; snappy, lz4 and zstd through python3-snappy, python3-lz4 and
python3-zstandard, which scripts/test installs), acks=all; a consumer with
manual assignment (assign() + seek_to_beginning(), no group) reads every
record exactly once with per-key order kept. kafka-python infers the
broker's release from ApiVersions and fixes its versions from it
(kafka-clients.md §1a): it must infer >= 2.1 to use zstd at all.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import (TestFailure, check_records, expect_codec, log,  # noqa: E402
                               make_records, run_test)

N_KEYS, PER_KEY, PARTITIONS = 100, 100, 6


def roundtrip(c, codec):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    topic = "kp-" + codec
    c.cli("topics", "create", "--topic", topic, "--partitions", str(PARTITIONS))
    p = KafkaProducer(bootstrap_servers=c.bootstrap, acks="all", linger_ms=5,
                      compression_type=None if codec == "none" else codec)
    if codec == "none":
        log("kafka-python infers broker version %s" % (p.config["api_version"],))
    records = make_records(N_KEYS, PER_KEY)
    futures = [p.send(topic, key=k, value=v) for k, v in records]
    p.flush(60)
    for f in futures:
        f.get(timeout=60)  # raises the delivery error, if any
    p.close()

    cons = KafkaConsumer(bootstrap_servers=c.bootstrap, enable_auto_commit=False,
                         group_id=None)
    tps = [TopicPartition(topic, i) for i in range(PARTITIONS)]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    got = []
    deadline = time.monotonic() + 60
    while len(got) < len(records) and time.monotonic() < deadline:
        for _tp, msgs in cons.poll(timeout_ms=500, max_records=5000).items():
            got += [(m.key, m.value) for m in msgs]
    for _tp, msgs in cons.poll(timeout_ms=500).items():
        got += [(m.key, m.value) for m in msgs]
    cons.close()
    problems = check_records(got, N_KEYS, PER_KEY)
    if problems:
        raise TestFailure("%s: %s" % (topic, "; ".join(problems[:5])))
    expect_codec(c, topic, codec)
    log("%s: %d records exactly once, per-key order kept" % (topic, len(got)))


def main(c):
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        roundtrip(c, codec)


if __name__ == "__main__":
    run_test(main)
