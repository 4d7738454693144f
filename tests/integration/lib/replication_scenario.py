# SPDX-License-Identifier: Apache-2.0
"""Helpers the replication scenario tests (0640-0644) share: a partition's batches as
the segment files hold them, identical-log checks, /metrics samples, a plain
producer and a reader of every record value.

Every function names its topic (and partition, 0 unless told); nothing here
asserts beyond what its docstring says, so each test keeps its own checks.
"""
import glob
import json
import os
import struct
import subprocess
import time

from tributary_harness import BIN_DIR, Skip, log
from zk_cluster import CHROOT, admin, check, wait_for

REPLICA_CHECK = os.path.join(BIN_DIR, "tributary-replica-check")


def need_confluent_kafka():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise Skip("confluent-kafka is missing")


def start_topic(cl, topic, partitions=1):
    """Starts the cluster's brokers 1-3, waits for a controller and creates `topic`
    (replication factor 3, min.insync.replicas 2). Returns the broker ids."""
    from confluent_kafka.admin import NewTopic
    cl.start()
    ids = [1, 2, 3]
    cl.wait_controller(ids)
    a = admin(cl.bootstrap())  # held until the result: a dropped client cancels the request
    a.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})],
                    request_timeout=60)[topic].result(timeout=90)
    return ids


def state_path(topic, p=0):
    return CHROOT + "/brokers/topics/%s/partitions/%d/state" % (topic, p)


def state(zk, topic, p=0):
    """The partition's state znode as ZooKeeper holds it, or None."""
    s = zk.get_json(state_path(topic, p))
    return s[0] if s else None


def move(zk, topic, leader, isr=None):
    """Plays the controller for partition 0: `leader` leads at leader epoch + 1 (the ISR
    unchanged, or isr)."""
    st, ver = zk.get_json(state_path(topic))
    new = dict(st, leader=leader, leader_epoch=st["leader_epoch"] + 1,
               isr=st["isr"] if isr is None else isr)
    check(zk.set(state_path(topic), json.dumps(new).encode(), ver),
          "the test's state write was refused")
    return new["leader_epoch"]


def batches(broker, topic, p=0):
    """[(base offset, last offset, crc, bytes)] of every batch in the partition's segment files."""
    out = []
    d = os.path.join(broker.data, "%s-%d" % (topic, p))
    for path in sorted(glob.glob(os.path.join(d, "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at + 61 <= len(data):
            base, length = struct.unpack(">qi", data[at:at + 12])
            if length <= 0 or at + 12 + length > len(data):
                break  # a preallocated or torn tail: not a batch
            raw = data[at:at + 12 + length]
            delta = struct.unpack(">i", raw[23:27])[0]
            crc = struct.unpack(">I", raw[17:21])[0]
            out.append((base, base + delta, crc, raw))
            at += 12 + length
    return out


def same_logs(brokers, topic, upto, p=0):
    """True when every broker holds the same batches below `upto` and its last one ends at
    upto - 1."""
    ref = None
    for b in brokers:
        bs = [x for x in batches(b, topic, p) if x[0] < upto]
        if not bs or bs[-1][1] + 1 != upto:
            return False
        if ref is None:
            ref = bs
        elif bs != ref:
            return False
    return True


def wait_same_logs(what, brokers, topic, upto, bound, p=0):
    """Waits (bounded) until same_logs() holds; `what` names the wait."""
    wait_for(what, lambda: same_logs(brokers, topic, upto, p), bound)


def metric(b, name, **labels):
    """A sample of broker b's /metrics with exactly these labels, or None."""
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % b.metrics_addr, timeout=5) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    key = "%s{%s}" % (name, want) if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def leo(b, topic, p=0):
    """The partition's log end offset as broker b's /metrics reports it."""
    return metric(b, "tributary_partition_log_end_offset", topic=topic, partition=p)


def log_has(b, text):
    return text in b.log_text()


def produce(bootstrap, topic, values, acks):
    """Produces values to partition 0 without idempotence: (acked, failed, left unflushed)."""
    from confluent_kafka import Producer
    acked, failed = [], []
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 2,
                  "message.timeout.ms": 60000, "enable.idempotence": False,
                  "retries": 1000 if acks == "all" else 0})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=0,
                  callback=lambda err, m: (failed if err else acked).append(m.value()))
        if i % 20 == 19:
            p.flush(90)  # batches of 20: a paused follower can hold at most the first
    left = p.flush(90)
    return acked, failed, left


def values_in(broker, topic):
    """Every record value of partition 0 in the broker's log up to its high watermark."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "chk-%f" % time.time(),
                  "enable.auto.commit": False})
    try:
        hw = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)[1]
        c.assign([TopicPartition(topic, 0, 0)])
        out, pos = [], 0
        deadline = time.monotonic() + 60
        while pos < hw and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            out.append(m.value())
            pos = m.offset() + 1
        check(pos >= hw, "read %d of %d records" % (pos, hw))
        return out
    finally:
        c.close()


def replica_check(brokers, topic):
    """Stops the brokers (SIGTERM) and checks with tributary-replica-check (--upto end)
    that their copies of the topic are identical."""
    for b in brokers:
        b.kill("TERM")
    p = subprocess.run([REPLICA_CHECK, "--upto", "end", "--topic", topic] +
                       [b.data for b in brokers], capture_output=True, text=True,
                       timeout=120)
    check(p.returncode == 0, "tributary-replica-check exit %d:\n%s%s"
          % (p.returncode, p.stdout, p.stderr))
    log("tributary-replica-check: %s" % (p.stdout.strip().splitlines() or ["identical"])[-1])
