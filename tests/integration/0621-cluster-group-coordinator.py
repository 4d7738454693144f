# SPDX-License-Identifier: Apache-2.0
"""Consumer groups on a three-broker cluster: the coordinator of a group is
the leader of its __consumer_offsets partition (lib/zk_cluster.py).

  1. a confluent-kafka consumer group reads a replicated topic and commits;
     a second consumer of the group starts at the committed offset;
  2. FindCoordinator on every broker names the same broker, the leader of
     partition abs(hashCode(group)) % 50 of __consumer_offsets as its state
     znode in ZooKeeper says;
  3. the two other brokers answer OffsetFetch and Heartbeat for the group
     with NOT_COORDINATOR (raw requests).
Every wait is bounded; every process stops however the test ends.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check  # noqa: E402

TOPIC = "events"
GROUP = "readers"
NOT_COORDINATOR = 16


def java_hash(s):
    h = 0
    for unit in struct.unpack(">%dH" % (len(s.encode("utf-16-be")) // 2), s.encode("utf-16-be")):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def group_partition(group, partitions):
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def call(addr, key, version, body):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        hdr = struct.pack(">hhi", key, version, 1) + kstr("t0621")
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise TestFailure("connection closed by %s" % addr)
            data += chunk
        return data[8:]  # after the size and the correlation id


def find_coordinator(addr):
    """FindCoordinator v1: (error, node id)."""
    r = call(addr, 10, 1, kstr(GROUP) + b"\0")
    err = struct.unpack_from(">h", r, 4)[0]
    msg_len = struct.unpack_from(">h", r, 6)[0]
    node = struct.unpack_from(">i", r, 8 + max(msg_len, 0))[0]
    return err, node


def offset_fetch_error(addr):
    """OffsetFetch v3 for every topic of the group: its top-level error."""
    r = call(addr, 9, 3, kstr(GROUP) + struct.pack(">i", -1))
    # ThrottleTimeMs, Topics (count, then each), ErrorCode last
    return struct.unpack_from(">h", r, len(r) - 2)[0]


def heartbeat_error(addr):
    r = call(addr, 12, 1, kstr(GROUP) + struct.pack(">i", 1) + kstr("m"))
    return struct.unpack_from(">h", r, 4)[0]


def consume(bootstrap, n, commit):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([TOPIC])
    got, first = [], None
    deadline = time.monotonic() + 90
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        check(m.error() is None, "consumer error: %s" % m.error())
        if first is None:
            first = m.offset()
        got.append(m.value())
    if commit and got:
        c.commit(asynchronous=False)
    c.close()
    return first, got


def main():
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    with Cluster(brokers=3, session_timeout="6s") as cl:
        cl.start()
        cl.wait_controller([1, 2, 3])
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": cl.bootstrap()})
        # min.insync 1: these followers may not fetch; this test is about the coordinator.
        admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "1"})])[
            TOPIC].result(60)
        p = Producer({"bootstrap.servers": cl.bootstrap(), "acks": 1})
        for i in range(20):
            p.produce(TOPIC, ("e%d" % i).encode(), partition=0)
        check(p.flush(60) == 0, "produce did not finish")

        # 1. Read and commit 10, then the group goes on from 10.
        first, got = consume(cl.bootstrap(), 10, True)
        check(first == 0 and len(got) == 10, "first consumer: from %s, %d records"
              % (first, len(got)))
        first, got = consume(cl.bootstrap(), 10, False)
        check(first == 10 and len(got) == 10, "second consumer: from %s, %d records"
              % (first, len(got)))
        log("step 1: committed 10; the group resumed at 10")

        # 2. Every broker names the leader of the group's partition.
        zr = cl.zk.reader()
        try:
            pi = group_partition(GROUP, 50)
            state = zr.get_json(CHROOT + "/brokers/topics/__consumer_offsets/partitions/%d/state"
                                % pi)[0]
        finally:
            zr.close()
        leader = state["leader"]
        for b in cl.live():
            err, node = find_coordinator(b.bootstrap)
            check(err == 0 and node == leader, "broker %d names coordinator %d (error %d); "
                  "__consumer_offsets-%d is led by %d" % (b.id, node, err, pi, leader))
        log("step 2: every broker names %d, the leader of __consumer_offsets-%d" % (leader, pi))

        # 3. The others refuse, and their replicas hold nothing of the group.
        for b in cl.live():
            if b.id == leader:
                check(offset_fetch_error(b.bootstrap) == 0, "the coordinator refused OffsetFetch")
                continue
            check(offset_fetch_error(b.bootstrap) == NOT_COORDINATOR,
                  "broker %d answered OffsetFetch for a group it does not coordinate" % b.id)
            check(heartbeat_error(b.bootstrap) == NOT_COORDINATOR,
                  "broker %d answered Heartbeat for a group it does not coordinate" % b.id)
        log("step 3: the other brokers answer NOT_COORDINATOR")


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
