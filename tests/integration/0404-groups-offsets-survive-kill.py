# SPDX-License-Identifier: Apache-2.0
"""Committed offsets survive a SIGKILL of the collector: a librdkafka group
consumer commits part of a 6-partition topic, the collector is SIGKILLed
and restarted on the same data dir (__consumer_offsets is replayed), and a
new consumer of the group starts exactly at the committed offsets and reads
only the rest. A kafka-python standalone commit (manual assignment,
generation -1, member "") is fetched back after the restart too, and
DeleteGroups removes a group for good (tombstones survive the restart)."""
import importlib.util
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "grouplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0499_grouplib.py"))
grouplib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grouplib)

TOPIC = "resume"
GROUP = "g-resume"


def consumer(bootstrap, group=GROUP):
    from confluent_kafka import Consumer
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 3000, "heartbeat.interval.ms": 300})


def read_some(c, want, timeout=30):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for m in c.consume(num_messages=want - len(got), timeout=0.5):
            if not m.error():
                got.append((m.partition(), m.offset()))
    return got


def main(c):
    from confluent_kafka import TopicPartition
    grouplib.create_topic(c.bootstrap, TOPIC)
    grouplib.produce(c.bootstrap, TOPIC, 0, 600)

    c1 = consumer(c.bootstrap)
    c1.subscribe([TOPIC])
    got = read_some(c1, 250)
    nxt = {}
    for p, o in got:
        nxt[p] = max(nxt.get(p, 0), o + 1)
    res = c1.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in nxt.items()],
                    asynchronous=False)
    if any(tp.error for tp in res):
        raise TestFailure("commit failed: %s" % res)
    log("consumer 1 read %d records and committed %s" % (len(got), nxt))

    # A standalone commit (kafka-python, manual assignment: generation -1, member "").
    from kafka import KafkaConsumer, TopicPartition as KTP, OffsetAndMetadata
    kc = KafkaConsumer(bootstrap_servers=c.bootstrap, group_id="g-standalone",
                       enable_auto_commit=False, api_version_auto_timeout_ms=10000)
    kc.assign([KTP(TOPIC, 0), KTP(TOPIC, 1)])
    kc.commit({KTP(TOPIC, 0): OffsetAndMetadata(42, "meta-0"),
               KTP(TOPIC, 1): OffsetAndMetadata(7, "")})
    kc.close()
    # A group deleted before the kill stays deleted.
    kd = KafkaConsumer(bootstrap_servers=c.bootstrap, group_id="g-deleted",
                       enable_auto_commit=False, api_version_auto_timeout_ms=10000)
    kd.assign([KTP(TOPIC, 2)])
    kd.commit({KTP(TOPIC, 2): OffsetAndMetadata(5, "")})
    kd.close()
    from kafka.admin import KafkaAdminClient
    adm = KafkaAdminClient(bootstrap_servers=c.bootstrap, api_version_auto_timeout_ms=10000)
    res = dict(adm.delete_consumer_groups(["g-deleted"]))
    if res.get("g-deleted") is None or res["g-deleted"].errno != 0:
        raise TestFailure("DeleteGroups: %s" % res)
    groups = {g for g, _ in adm.list_consumer_groups()}
    if "g-deleted" in groups or GROUP not in groups or "g-standalone" not in groups:
        raise TestFailure("ListGroups after the delete: %s" % sorted(groups))
    desc = adm.describe_consumer_groups([GROUP])[0]
    if desc.state != "Stable" or len(desc.members) != 1 or desc.protocol != "range":
        raise TestFailure("DescribeGroups: %s" % (desc,))
    adm.close()

    c.restart("KILL")  # consumer 1 is still a member: it simply loses its coordinator
    c1.close()

    c2 = consumer(c.bootstrap)
    c2.subscribe([TOPIC])
    rest = read_some(c2, 600 - sum(nxt.values()))
    first = {}
    for p, o in rest:
        first[p] = min(first.get(p, o), o)
    for p in range(6):
        want = nxt.get(p, 0)
        if first.get(p, want) != want:
            raise TestFailure("partition %d: the new consumer started at %s, committed was %d"
                              % (p, first.get(p), want))
    if len(rest) != 600 - sum(nxt.values()) or len(set(rest)) != len(rest):
        raise TestFailure("the new consumer read %d records, expected %d"
                          % (len(rest), 600 - sum(nxt.values())))
    extra = read_some(c2, 1, timeout=2)
    if extra:
        raise TestFailure("records read twice after the restart: %s" % extra)
    c2.close()
    log("after SIGKILL and restart the new consumer resumed at %s and read the other %d"
        % (nxt, len(rest)))

    offs = grouplib.committed(c.bootstrap, "g-standalone", TOPIC, 2)
    if offs != {0: 42, 1: 7}:
        raise TestFailure("standalone commits after the restart: %s" % offs)
    offs = grouplib.committed(c.bootstrap, "g-deleted", TOPIC, 3)
    if offs.get(2, -1001) >= 0:
        raise TestFailure("the deleted group's offset came back: %s" % offs)
    log("standalone commits kept, deleted group stayed deleted")


run_test(main, grouplib.config_args())
