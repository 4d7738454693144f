#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The admin APIs through real admin clients.

python3-confluent-kafka (librdkafka 2.0.2): CreateTopics with configs and
validate_only, Metadata (leader 1, replicas [1], ISR [1]), DescribeConfigs
of a topic (values and sources) and of the broker, AlterConfigs (replaces
the overrides), CreatePartitions, DeleteTopics, TOPIC_ALREADY_EXISTS,
ListOffsets by timestamp (offsets_for_times) on records with known
timestamps.

kafka-python 2.0.2's KafkaAdminClient: create_topics, describe_topics,
describe_cluster (controller), describe_configs, alter_configs,
create_partitions, delete_topics. Both clients negotiate their own
versions from our ApiVersions.
"""
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: got %r, expected %r" % (what, got, want))
    log("%s: %r" % (what, got))


def confluent(c):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic)
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    t = NewTopic("ad-1", 3, 1, config={"retention.ms": "3600000", "cleanup.policy": "compact"})
    admin.create_topics([t])["ad-1"].result(30)
    admin.create_topics([NewTopic("ad-v", 2, 1)], validate_only=True)["ad-v"].result(30)
    md = admin.list_topics(timeout=10)
    expect("validate_only created nothing", "ad-v" in md.topics, False)
    parts = md.topics["ad-1"].partitions
    expect("ad-1 partitions", sorted(parts), [0, 1, 2])
    expect("leader/replicas/isr", {(p.leader, tuple(p.replicas), tuple(p.isrs))
                                   for p in parts.values()}, {(1, (1,), (1,))})
    expect("controller", md.controller_id, 1)
    try:
        admin.create_topics([NewTopic("ad-1", 1, 1)])["ad-1"].result(30)
        raise TestFailure("creating ad-1 twice succeeded")
    except KafkaException as e:
        expect("create twice", e.args[0].name(), "TOPIC_ALREADY_EXISTS")

    def describe(name):
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        return admin.describe_configs([res])[res].result(30)

    cfg = describe("ad-1")
    expect("retention.ms", (cfg["retention.ms"].value, cfg["retention.ms"].source),
           ("3600000", 1))
    expect("cleanup.policy", cfg["cleanup.policy"].value, "compact")
    expect("segment.bytes (default)", (cfg["segment.bytes"].value, cfg["segment.bytes"].is_default),
           ("1073741824", True))
    res = ConfigResource(ConfigResource.Type.TOPIC, "ad-1", set_config={"retention.ms": "7200000"})
    admin.alter_configs([res])[res].result(30)
    cfg = describe("ad-1")
    expect("after AlterConfigs", (cfg["retention.ms"].value, cfg["cleanup.policy"].value),
           ("7200000", "delete"))
    bres = ConfigResource(ConfigResource.Type.BROKER, "1")
    bcfg = admin.describe_configs([bres])[bres].result(30)
    expect("broker node.id", bcfg["node.id"].value, "1")
    expect("broker log.dirs", bcfg["log.dirs"].value, c.data)
    admin.create_partitions([NewPartitions("ad-1", 5)])["ad-1"].result(30)
    expect("after CreatePartitions", len(admin.list_topics(timeout=10).topics["ad-1"].partitions),
           5)

    # ListOffsets by timestamp.
    p = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 0})
    base = 1700000000000
    for i in range(10):
        p.produce("ad-1", value=b"v%d" % i, partition=4, timestamp=base + i * 1000)
        p.flush(10)
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "unused"})
    expect("watermarks", cons.get_watermark_offsets(TopicPartition("ad-1", 4), timeout=10),
           (0, 10))
    got = [cons.offsets_for_times([TopicPartition("ad-1", 4, ts)], timeout=10)[0].offset
           for ts in (base + 3500, base, base + 99000)]
    expect("offsets_for_times", got, [4, 0, -1])
    cons.close()

    admin.delete_topics(["ad-1"])["ad-1"].result(30)
    deadline = time.monotonic() + 10
    while "ad-1" in admin.list_topics(timeout=10).topics:
        if time.monotonic() > deadline:
            raise TestFailure("ad-1 still listed after DeleteTopics")
        time.sleep(0.1)
    # The partition directories go too (renamed "-delete", removed in the background).
    deadline = time.monotonic() + 10
    while glob.glob(os.path.join(c.data, "ad-1-*")):
        if time.monotonic() > deadline:
            raise TestFailure("ad-1 directories left after DeleteTopics: %s"
                              % glob.glob(os.path.join(c.data, "ad-1-*")))
        time.sleep(0.1)
    log("confluent-kafka admin: done")


def kafka_python(c):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=10000)
    admin.create_topics([NewTopic("ad-2", 2, 1, topic_configs={"segment.ms": "3600000"})])
    desc = admin.describe_topics(["ad-2"])
    expect("kafka-python describe_topics", [len(d["partitions"]) for d in desc], [2])
    cluster = admin.describe_cluster()
    expect("kafka-python describe_cluster controller", cluster["controller_id"], 1)
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "ad-2")])
    entries = {e[0]: e[1] for e in res[0].resources[0][4]}
    expect("kafka-python segment.ms", entries["segment.ms"], "3600000")
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "ad-2",
                                        configs={"retention.bytes": "1048576"})])
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "ad-2")])
    entries = {e[0]: e[1] for e in res[0].resources[0][4]}
    expect("kafka-python after alter", (entries["retention.bytes"], entries["segment.ms"]),
           ("1048576", "604800000"))
    admin.create_partitions({"ad-2": NewPartitions(4)})
    expect("kafka-python create_partitions",
           [len(d["partitions"]) for d in admin.describe_topics(["ad-2"])], [4])
    admin.delete_topics(["ad-2"])
    expect("kafka-python delete_topics", "ad-2" in admin.list_topics(), False)
    admin.close()
    log("kafka-python admin: done")


def main(c):
    confluent(c)
    kafka_python(c)


if __name__ == "__main__":
    run_test(main)
