#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Acknowledged records survive SIGKILL: python3-confluent-kafka writes
10,000 keyed records (acks=all, idempotent) into a 6-partition topic and
counts the delivery reports; the collector is killed with SIGKILL (no
chance to flush) and restarted on the same data dir; a kafka-python
consumer with manual assignment reads every acknowledged record, exactly
once and in per-key order. A second round appends after the recovered
logs and is killed again.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, check_records, log, make_records, run_test  # noqa: E402

PARTITIONS = 6


def produce(c, topic, records):
    from confluent_kafka import Producer
    errors, acked = [], [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "compression.type": "zstd"})
    for k, v in records:
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(60) or errors or acked[0] != len(records):
        raise TestFailure("%d acknowledged of %d, errors %s" % (acked[0], len(records), errors[:5]))
    log("%d records acknowledged" % acked[0])


def consume(c, topic, expected):
    from kafka import KafkaConsumer, TopicPartition
    cons = KafkaConsumer(bootstrap_servers=c.bootstrap, enable_auto_commit=False, group_id=None)
    tps = [TopicPartition(topic, i) for i in range(PARTITIONS)]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    got = []
    deadline = time.monotonic() + 60
    while len(got) < expected and time.monotonic() < deadline:
        for _tp, msgs in cons.poll(timeout_ms=500, max_records=5000).items():
            got += [(m.key, m.value) for m in msgs]
    for _tp, msgs in cons.poll(timeout_ms=500).items():
        got += [(m.key, m.value) for m in msgs]
    cons.close()
    return got


def main(c):
    topic = "killed"
    c.cli("topics", "create", "--topic", topic, "--partitions", str(PARTITIONS))
    produce(c, topic, make_records(100, 100))
    c.restart("KILL")
    problems = check_records(consume(c, topic, 10000), 100, 100)
    if problems:
        raise TestFailure("after SIGKILL: " + "; ".join(problems[:5]))
    # Second round: seq 100..149 for the same keys, appended after recovery.
    more = [(k, v) for k, v in make_records(100, 150) if int(v.rsplit(b"-", 1)[1]) >= 100]
    produce(c, topic, more)
    c.restart("KILL")
    problems = check_records(consume(c, topic, 15000), 100, 150)
    if problems:
        raise TestFailure("after the second SIGKILL: " + "; ".join(problems[:5]))
    log("every acknowledged record survived two SIGKILLs")


if __name__ == "__main__":
    run_test(main)
