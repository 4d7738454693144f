# SPDX-License-Identifier: Apache-2.0
"""The zookeeper backend's topics: created in ZooKeeper as Kafka 2.8 lays them
out, applied by every broker.

One ZooKeeper and three collectors (lib/zk_cluster.py). Checks:
  1. CreateTopics (confluent-kafka AdminClient, which sends it to the
     controller) of a topic with 3 partitions, replication factor 3 and a
     retention.ms override answers without error, and right after it
     Metadata from the broker that answered shows 3 partitions, each with a
     leader, 3 replicas and 3 ISR members, as do the others' (confluent-kafka,
     and kcat -L) once their watches fired; the leaders are spread (Kafka's
     round-robin assignment);
  2. the znodes hold Kafka's JSON: /brokers/topics/<t> (version 3, partitions,
     a 22-character topic_id, empty adding/removing_replicas), each
     partition's state (leader = first replica, leader_epoch 0, the ISR =
     the replicas, the controller epoch), /config/topics/<t> with the
     override; every broker has a log directory for each partition;
  3. DescribeConfigs on another broker shows the override (the config
     reached it through its watch), and min.insync.replicas is 2 (the
     cluster default);
  4. a replication factor above the live brokers gets
     INVALID_REPLICATION_FACTOR (also with validate_only, which writes
     nothing), a second create TOPIC_ALREADY_EXISTS;
  5. a topic created without a replication factor gets 3 replicas, and an
     auto-created one (kafka-python asks Metadata for an unknown topic) too.
Every wait is bounded; every process stops however the test ends.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, admin, check, wait_for  # noqa: E402

SESSION_S = 6


def md_topic(bootstrap, topic):
    """{partition: (leader, replicas, isrs)} from one broker's Metadata (confluent-kafka)."""
    a = admin(bootstrap)
    md = a.list_topics(topic=topic, timeout=15)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}


def kcat_topic(bootstrap, topic):
    p = subprocess.run(["kcat", "-L", "-J", "-b", bootstrap, "-t", topic, "-m", "15"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise ValueError("kcat -L: %s" % p.stderr.strip())
    md = json.loads(p.stdout)
    for t in md["topics"]:
        if t["topic"] == topic:
            return {q["partition"]: (q["leader"], [r["id"] for r in q["replicas"]],
                                     [r["id"] for r in q["isrs"]]) for q in t["partitions"]}
    return None


def fully_led(parts, n, rf):
    return (parts is not None and len(parts) == n and
            all(l >= 0 and len(r) == rf and sorted(i) == sorted(r) for l, r, i in parts.values()))


def main():
    from confluent_kafka.admin import ConfigResource, NewTopic
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        # librdkafka sends admin requests to the controller: it is the broker that answers.
        b1 = cl.broker(ctl)
        b2, b3 = (cl.broker(i) for i in ids if i != ctl)

        # 1. Create, then Metadata from every broker at once.
        a1, a2, a3 = admin(b1.bootstrap), admin(b2.bootstrap), admin(b3.bootstrap)
        fs = a1.create_topics(
            [NewTopic("orders", 3, 3, config={"retention.ms": "3600000"})],
            operation_timeout=30, request_timeout=60)
        fs["orders"].result(timeout=90)
        log("created orders through broker %d" % b1.id)
        parts = md_topic(b1.bootstrap, "orders")
        check(fully_led(parts, 3, 3), "broker %d answered CreateTopics before the topic was "
              "led: %s" % (b1.id, parts))
        for b in (b1, b2, b3):
            parts = md_topic(b.bootstrap, "orders")
            if not fully_led(parts, 3, 3):
                # Brokers other than the one that answered may be a watch behind.
                parts = wait_for("broker %d shows orders led" % b.id,
                                 lambda: fully_led(md_topic(b.bootstrap, "orders"), 3, 3)
                                 and md_topic(b.bootstrap, "orders"), 30, 0.2)
            log("broker %d: %s" % (b.id, parts))
            kparts = kcat_topic(b.bootstrap, "orders")
            check(fully_led(kparts, 3, 3), "kcat -L on broker %d: %s" % (b.id, kparts))
        leaders = sorted(l for l, _, _ in parts.values())
        check(leaders == [1, 2, 3], "leaders are not spread over the brokers: %s" % leaders)

        # 2. The znodes.
        zk = cl.zk.reader()
        try:
            topic, _ = zk.get_json(CHROOT + "/brokers/topics/orders")
            log("/brokers/topics/orders: %s" % topic)
            check(topic["version"] == 3, "topic znode version %s" % topic.get("version"))
            check(sorted(topic["partitions"]) == ["0", "1", "2"], "partitions %s" % topic)
            check(len(topic["topic_id"]) == 22, "topic_id %r" % topic.get("topic_id"))
            check(topic["adding_replicas"] == {} and topic["removing_replicas"] == {},
                  "adding/removing_replicas %s" % topic)
            epoch = int(zk.get(CHROOT + "/controller_epoch")[0])
            for p, reps in topic["partitions"].items():
                check(len(set(reps)) == 3 and set(reps) == set(ids), "replicas %s" % reps)
                st, version = zk.get_json(CHROOT + "/brokers/topics/orders/partitions/%s/state"
                                          % p)
                log("partition %s state (version %d): %s" % (p, version, st))
                check(st["version"] == 1 and st["leader"] == reps[0] and
                      st["leader_epoch"] == 0 and sorted(st["isr"]) == sorted(reps) and
                      st["controller_epoch"] == epoch, "state of partition %s: %s" % (p, st))
                check(parts[int(p)][0] == reps[0], "Metadata leader of %s is %s, the znode says "
                      "%s" % (p, parts[int(p)][0], reps[0]))
            cfg, _ = zk.get_json(CHROOT + "/config/topics/orders")
            check(cfg == {"version": 1, "config": {"retention.ms": "3600000"}},
                  "/config/topics/orders: %s" % cfg)
        finally:
            zk.close()
        for b in (b1, b2, b3):
            for p in range(3):
                d = os.path.join(b.data, "orders-%d" % p)
                check(os.path.isdir(d), "broker %d has no %s" % (b.id, d))

        # 3. The config as another broker describes it.
        res = ConfigResource("topic", "orders")
        got = a3.describe_configs([res])[res].result(timeout=60)
        check(got["retention.ms"].value == "3600000", "retention.ms on broker 3: %s"
              % got["retention.ms"].value)
        check(got["min.insync.replicas"].value == "2", "min.insync.replicas on broker 3: %s"
              % got["min.insync.replicas"].value)

        # 4. Refusals.
        from confluent_kafka import KafkaException
        fs = a2.create_topics([NewTopic("too-many", 1, 4)], request_timeout=60)
        try:
            fs["too-many"].result(timeout=90)
            raise TestFailure("replication factor 4 on 3 brokers was accepted")
        except KafkaException as e:
            check(e.args[0].name() == "INVALID_REPLICATION_FACTOR", "RF 4: %s" % e)
            log("RF 4: %s" % e.args[0].str())
        fs = a2.create_topics([NewTopic("checked", 2, 3), NewTopic("checked-rf4", 1, 4)],
                              validate_only=True, request_timeout=60)
        fs["checked"].result(timeout=90)
        try:
            fs["checked-rf4"].result(timeout=90)
            raise TestFailure("validate_only accepted replication factor 4")
        except KafkaException as e:
            check(e.args[0].name() == "INVALID_REPLICATION_FACTOR", "validate RF 4: %s" % e)
        zk = cl.zk.reader()
        try:
            check(zk.get(CHROOT + "/brokers/topics/checked") is None,
                  "validate_only created the topic")
        finally:
            zk.close()
        fs = a2.create_topics([NewTopic("orders", 1, 1)], request_timeout=60)
        try:
            fs["orders"].result(timeout=90)
            raise TestFailure("creating orders twice was accepted")
        except KafkaException as e:
            check(e.args[0].name() == "TOPIC_ALREADY_EXISTS", "second create: %s" % e)

        # 5. Defaults: replication factor 3, explicitly and by auto-creation.
        fs = a3.create_topics([NewTopic("defaults", 2)], request_timeout=60)
        fs["defaults"].result(timeout=90)
        wait_for("topic 'defaults' led with 3 replicas",
                 lambda: fully_led(md_topic(b3.bootstrap, "defaults"), 2, 3), 30, 0.2)
        from kafka import KafkaProducer
        prod = KafkaProducer(bootstrap_servers=b2.bootstrap, max_block_ms=60000)
        try:
            parts = prod.partitions_for("auto-created")
            log("auto-created: partitions %s" % sorted(parts))
        finally:
            prod.close(timeout=10)
        wait_for("auto-created topic led with 3 replicas",
                 lambda: fully_led(md_topic(b1.bootstrap, "auto-created"), 1, 3), 60, 0.2)



if __name__ == "__main__":
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
