# SPDX-License-Identifier: Apache-2.0
"""Consumer-group failover on a cluster (tests 0622-0625): raw Kafka requests
to one broker (FindCoordinator, OffsetCommit, OffsetFetch), the tests' setup
and the scenario of a committing confluent-kafka consumer
whose coordinator is stopped.

The coordinator of a group is the leader of partition
abs(hashCode(group)) % 50 of __consumer_offsets; after its broker goes, the
next leader of that partition must serve the group's committed offsets.
"""
import socket
import struct
import time

from tributary_harness import Skip, TestFailure, log
from zk_cluster import CHROOT, Cluster, check, wait_for

NONE = 0
REQUEST_TIMED_OUT = 7
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
RETRIABLE = (COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR)
OFFSETS_PARTITIONS = 50


def java_hash(s):
    units = s.encode("utf-16-be")
    h = 0
    for (u,) in struct.iter_unpack(">H", units):
        h = (31 * h + u) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def group_partition(group, partitions=OFFSETS_PARTITIONS):
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def call(addr, key, version, body, timeout=30):
    """One request on a fresh connection; the response body after the correlation id."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        hdr = struct.pack(">hhi", key, version, 7) + kstr("group-failover")
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise TestFailure("connection closed by %s" % addr)
            data += chunk
        return data[8:]


def find_coordinator(addr, group):
    """FindCoordinator v1: (error, node id)."""
    r = call(addr, 10, 1, kstr(group) + b"\0")
    err = struct.unpack_from(">h", r, 4)[0]
    msg_len = struct.unpack_from(">h", r, 6)[0]
    node = struct.unpack_from(">i", r, 8 + max(msg_len, 0))[0]
    return err, node


def offset_commit(addr, group, topic, partition, offset, timeout=30):
    """A standalone OffsetCommit v2 (generation -1, no member): the partition's error."""
    body = (kstr(group) + struct.pack(">i", -1) + kstr("") + struct.pack(">q", -1)
            + struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", 1)
            + struct.pack(">iq", partition, offset) + kstr(""))
    r = call(addr, 8, 2, body, timeout)
    # v2 has no throttle time: Topics (count, name, Partitions (count, index, error))
    n = struct.unpack_from(">h", r, 4)[0]
    at = 4 + 2 + n
    return struct.unpack_from(">h", r, at + 8)[0]


def offset_fetch(addr, group):
    """OffsetFetch v3 for every topic: (error, {(topic, partition): offset})."""
    r = call(addr, 9, 3, kstr(group) + struct.pack(">i", -1))
    at = 4  # throttle
    (nt,) = struct.unpack_from(">i", r, at)
    at += 4
    out = {}
    for _ in range(nt):
        (ln,) = struct.unpack_from(">h", r, at)
        name = r[at + 2:at + 2 + ln].decode()
        at += 2 + ln
        (np_,) = struct.unpack_from(">i", r, at)
        at += 4
        for _ in range(np_):
            p, off = struct.unpack_from(">iq", r, at)
            at += 12
            (ml,) = struct.unpack_from(">h", r, at)
            at += 2 + max(ml, 0) + 2
            out[(name, p)] = off
    (err,) = struct.unpack_from(">h", r, at)
    return err, out


def offsets_state(cl, group):
    """The state znode of the group's __consumer_offsets partition (or None)."""
    zr = cl.zk.reader()
    try:
        return zr.get_json(CHROOT + "/brokers/topics/__consumer_offsets/partitions/%d/state"
                           % group_partition(group))[0]
    except Exception:
        return None
    finally:
        zr.close()


def wait_coordinator(cl, group, exclude=(), timeout=90):
    """Waits until every live broker names the same coordinator (not in exclude) and
    that broker answers OffsetFetch for the group; returns (broker id, offsets)."""
    def agreed():
        names = set()
        for b in cl.live():
            try:
                err, node = find_coordinator(b.bootstrap, group)
            except (OSError, TestFailure):
                return None
            if err != NONE:
                return None
            names.add(node)
        if len(names) != 1:
            return None
        node = names.pop()
        if node in exclude or not cl.broker(node).alive():
            return None
        st = offsets_state(cl, group)
        if not st or st["leader"] != node:
            return None
        try:
            err, offs = offset_fetch(cl.broker(node).bootstrap, group)
        except (OSError, TestFailure):
            return None
        if err in RETRIABLE:
            return None
        check(err == NONE, "coordinator %d answered OffsetFetch with error %d" % (node, err))
        return node, offs
    return wait_for("a coordinator for %s%s" % (group, " other than %s" % list(exclude)
                                                 if exclude else ""), agreed, timeout, 0.2)


def committing_consumer_failover(cl, topic, group, sig, records=400):
    """A consumer reads and commits (synchronously) batch after batch; after a few
    commits the coordinator's broker gets `sig`; the consumer goes on until it has
    committed through the new coordinator, then leaves. The new coordinator must serve
    exactly the last acknowledged commit, and a new consumer must start there."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    coord, offs = wait_coordinator(cl, group)
    log("coordinator of %s: broker %d (leader of __consumer_offsets-%d)"
        % (group, coord, group_partition(group)))
    c = Consumer({"bootstrap.servers": cl.bootstrap(), "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 30000, "topic.metadata.refresh.interval.ms": 1000})
    c.subscribe([topic])
    acked = []      # offsets acknowledged, in order
    failed = 0
    signalled = None
    after = 0       # commits acknowledged after the signal
    deadline = time.monotonic() + 180
    pos = None
    while time.monotonic() < deadline:
        msgs = c.consume(num_messages=5, timeout=1)
        for m in msgs:
            check(m.error() is None, "consumer error: %s" % m.error())
            pos = m.offset() + 1
        if pos is None:
            continue
        try:
            res = c.commit(offsets=[TopicPartition(topic, 0, pos)], asynchronous=False)
            check(res and res[0].error is None, "commit answered %s" % res)
            acked.append(pos)
            if signalled:
                after += 1
                if after == 1:
                    log("first commit acknowledged %.1f s after the signal"
                        % (time.monotonic() - signalled))
        except KafkaException as e:
            failed += 1
            log("commit of %d failed: %s" % (pos, e))
            continue
        if len(acked) == 5 and not signalled:
            log("signalling broker %d (SIG%s) after commit %d" % (coord, sig, pos))
            signalled = time.monotonic()
            if sig == "KILL":
                cl.broker(coord).kill("KILL")
            else:
                cl.broker(coord).proc.send_signal(__import__("signal").SIGTERM)
        if signalled and after >= 5:
            break
        if pos >= records:
            break
    check(signalled and after >= 5, "the consumer did not commit 5 times after the signal "
          "(%d acknowledged, %d failed)" % (len(acked), failed))
    if sig == "TERM":
        st = cl.broker(coord).proc.wait(timeout=60)
        check(st == 0, "SIGTERM ended broker %d with status %s" % (coord, st))
        cl.broker(coord).proc = None
    last = acked[-1]
    check(acked == sorted(acked), "acknowledged commits went backwards: %s" % acked)
    log("%d commits acknowledged (%d after the signal, %d failed); last %d"
        % (len(acked), after, failed, last))
    c.close()
    new, offs = wait_coordinator(cl, group, exclude=(coord,))
    got = offs.get((topic, 0))
    check(got == last, "new coordinator %d serves offset %s for %s-0; the last acknowledged "
          "commit was %d" % (new, got, topic, last))
    log("new coordinator %d serves %d, the last acknowledged commit" % (new, got))
    # A new member of the group resumes exactly there.
    c2 = Consumer({"bootstrap.servers": cl.bootstrap(), "group.id": group,
                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c2.subscribe([topic])
    first = None
    deadline = time.monotonic() + 90
    while first is None and time.monotonic() < deadline:
        m = c2.poll(1)
        if m is None:
            continue
        check(m.error() is None, "consumer error: %s" % m.error())
        first = m.offset()
    c2.close()
    check(first == last, "the next consumer started at %s, not at the committed %d"
          % (first, last))
    log("a new consumer resumed at %d" % first)
    return coord, new, last


def elect_preferred(addr, topic, partition):
    """ElectLeaders v1 (preferred) for one partition: (top-level error, partition error)."""
    body = (struct.pack(">b", 0) + struct.pack(">i", 1) + kstr(topic) + struct.pack(">ii", 1,
                                                                                   partition)
            + struct.pack(">i", 30000))
    r = call(addr, 43, 1, body)
    at = 4
    (top,) = struct.unpack_from(">h", r, at)
    at += 2
    (nt,) = struct.unpack_from(">i", r, at)
    at += 4
    perr = None
    for _ in range(nt):
        (ln,) = struct.unpack_from(">h", r, at)
        at += 2 + ln
        (np_,) = struct.unpack_from(">i", r, at)
        at += 4
        for _ in range(np_):
            _p, perr = struct.unpack_from(">ih", r, at)
            at += 6
            (ml,) = struct.unpack_from(">h", r, at)
            at += 2 + max(ml, 0)
    return top, perr


def need_client():
    """Skip unless confluent-kafka imports."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)


def start_with_topic(cl, topic):
    """Starts brokers 1-3, waits for a controller and creates `topic` (1 partition,
    replication factor 3). Returns the controller's id."""
    cl.start()
    ctl = cl.wait_controller([1, 2, 3])
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": cl.bootstrap()})
    admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(60)
    return ctl


def coordinator_failover(topic, group, sig, records=400):
    """0622/0623: records in `topic`, committing_consumer_failover with `sig`, then the
    stopped broker comes back and the coordinator (wherever it is) still serves the last
    acknowledged commit."""
    need_client()
    with Cluster(brokers=3, session_timeout="6s") as cl:
        start_with_topic(cl, topic)
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": cl.bootstrap(), "acks": "all"})
        for i in range(records):
            p.produce(topic, ("e%d" % i).encode(), partition=0)
        check(p.flush(60) == 0, "produce did not finish")
        coord, new, last = committing_consumer_failover(cl, topic, group, sig, records)
        cl.broker(coord).start()
        cl.wait_controller([1, 2, 3])
        node, offs = wait_coordinator(cl, group)
        check(offs.get((topic, 0)) == last, "after broker %d came back, coordinator %d serves "
              "%s, not %d" % (coord, node, offs.get((topic, 0)), last))
        log("broker %d is back; coordinator %d still serves %d" % (coord, node, last))
