# SPDX-License-Identifier: Apache-2.0
"""The leader side of replication on a three-broker cluster (lib/zk_cluster.py).

replica.lag.time.max.ms is 8 s and the ZooKeeper session timeout 40 s, so
a paused follower leaves the ISR by the leader's lag rule before its
session could expire. A topic with one partition, replication factor 3
and min.insync.replicas 2:
  1. acks=all (confluent-kafka): right after the acknowledgements every
     follower's log end (its metrics) is past the last acknowledged
     offset. With both followers SIGSTOPped (briefly, well inside the lag
     time) a raw acks=all Produce is not answered, and a consumer's Fetch
     and ListOffsets see nothing past the high watermark although the
     leader's log end moved; resumed, the produce is answered NONE and
     consumers see the records;
  2. one follower paused (and put behind by an acks=1 record: a follower
     at the log end stays in sync however long it is silent, as in Kafka)
     leaves the ISR after the lag time: the state znode, Metadata, the
     leader's tributary_isr_shrinks_total and
     tributary_under_replicated_partitions; acks=all works with two;
  3. both paused: the ISR is the leader alone and acks=all gets
     NOT_ENOUGH_REPLICAS (kafka-python, no retries);
  4. resumed, both catch up and rejoin: [1, 2, 3] in ZooKeeper and
     Metadata, the expand counter, the high watermark at the log end;
  5. OffsetForLeaderEpoch on the leader answers the current epoch's end
     (the log end) and FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for an
     older / newer CurrentLeaderEpoch; a follower answers
     NOT_LEADER_OR_FOLLOWER to OffsetForLeaderEpoch, Produce, Fetch and
     ListOffsets.
Every wait is bounded; every process stops however the test ends.
"""
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

LAG_MS = 8000
SESSION_S = 40
TOPIC = "r3"
# Bounds, not expectations: a shrink comes within 1.5 lag times; a loaded 2-CPU machine.
BOUND = LAG_MS / 1000 * 3 + 30

NOT_LEADER_OR_FOLLOWER = 6
NOT_ENOUGH_REPLICAS = 19
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


# ---- a raw Kafka client (non-flexible versions) ------------------------------------------------

def s8(v):
    return struct.pack(">b", v)


def s16(v):
    return struct.pack(">h", v)


def s32(v):
    return struct.pack(">i", v)


def s64(v):
    return struct.pack(">q", v)


def kstr(s):
    if s is None:
        return s16(-1)
    b = s.encode()
    return s16(len(b)) + b


class Reader:
    def __init__(self, b):
        self.b = b
        self.at = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.at)[0]
        self.at += struct.calcsize(fmt)
        return v

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def raw(self, n):
        v = self.b[self.at:self.at + max(n, 0)]
        self.at += max(n, 0)
        return v

    def string(self):
        return self.raw(self.i16()).decode()


class Raw:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.corr = 0

    def close(self):
        self.sock.close()

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise TestFailure("the broker closed the connection")
            out += chunk
        return out

    def send(self, key, version, body):
        self.corr += 1
        hdr = s16(key) + s16(version) + s32(self.corr) + kstr("t0620")
        self.sock.sendall(s32(len(hdr) + len(body)) + hdr + body)
        return self.corr

    def recv(self, corr):
        n = struct.unpack(">i", self._exact(4))[0]
        data = self._exact(n)
        check(struct.unpack(">i", data[:4])[0] == corr, "correlation id mismatch")
        return Reader(data[4:])

    def call(self, key, version, body):
        return self.recv(self.send(key, version, body))

    def readable(self):
        import select
        return bool(select.select([self.sock], [], [], 0)[0])


def batch(n, tag):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    now = int(time.time() * 1000)
    for i in range(n):
        b.append(i, timestamp=now, key=None, value=("%s-%d" % (tag, i)).encode(), headers=[])
    return bytes(b.build())


def produce_send(raw, acks, records, timeout_ms=60000):
    """Produce v3 to partition 0; returns the correlation id (read with produce_recv)."""
    body = (kstr(None) + s16(acks) + s32(timeout_ms) + s32(1) + kstr(TOPIC) + s32(1) + s32(0) +
            s32(len(records)) + records)
    return raw.send(0, 3, body)


def produce_recv(raw, corr):
    r = raw.recv(corr)
    check(r.i32() == 1 and r.string() == TOPIC and r.i32() == 1, "Produce response shape")
    r.i32()
    return r.i16(), r.i64()


def fetch(raw, offset, replica=-1, epoch=-1, max_wait=0):
    """Fetch v11 of partition 0: (error, high watermark, record bytes)."""
    body = (s32(replica) + s32(max_wait) + s32(1) + s32(1 << 24) + s8(0) + s32(0) + s32(-1) +
            s32(1) + kstr(TOPIC) + s32(1) + s32(0) + s32(epoch) + s64(offset) + s64(-1) +
            s32(1 << 20) + s32(0) + kstr(""))
    r = raw.call(1, 11, body)
    r.i32()
    top, _sid = r.i16(), r.i32()
    check(top == 0, "Fetch top-level error %d" % top)
    check(r.i32() == 1 and r.string() == TOPIC and r.i32() == 1, "Fetch response shape")
    r.i32()
    err, hw = r.i16(), r.i64()
    r.i64()
    r.i64()
    n = r.i32()
    for _ in range(max(n, 0)):
        r.i64()
        r.i64()
    r.i32()
    recs = r.raw(r.i32())
    return err, hw, recs


def count_records(recs):
    n, at = 0, 0
    while at + 61 <= len(recs):
        length = struct.unpack_from(">i", recs, at + 8)[0]
        n += struct.unpack_from(">i", recs, at + 57)[0]
        at += 12 + length
    return n


def list_latest(raw, replica=-1):
    """ListOffsets v4 latest of partition 0: (error, offset, leader epoch)."""
    body = s32(replica) + s8(0) + s32(1) + kstr(TOPIC) + s32(1) + s32(0) + s32(-1) + s64(-1)
    r = raw.call(2, 4, body)
    r.i32()
    check(r.i32() == 1 and r.string() == TOPIC and r.i32() == 1, "ListOffsets response shape")
    r.i32()
    err, _ts, off, le = r.i16(), r.i64(), r.i64(), r.i32()
    return err, off, le


def ofle(raw, current, epoch):
    """OffsetForLeaderEpoch v3 (a client) of partition 0: (error, epoch, end offset)."""
    body = s32(-1) + s32(1) + kstr(TOPIC) + s32(1) + s32(0) + s32(current) + s32(epoch)
    r = raw.call(23, 3, body)
    r.i32()
    check(r.i32() == 1 and r.string() == TOPIC and r.i32() == 1, "OffsetForLeaderEpoch shape")
    err, _p, le, end = r.i16(), r.i32(), r.i32(), r.i64()
    return err, le, end


# ---- the cluster --------------------------------------------------------------------------------

def zk_state(cl):
    zr = cl.zk.reader()
    try:
        v = zr.get_json(CHROOT + "/brokers/topics/%s/partitions/0/state" % TOPIC)
    finally:
        zr.close()
    return v[0] if v else None


def metric(b, name):
    return b.metrics().get(name, 0)


def md_isr(b):
    """The ISR of TOPIC-0 in broker b's Metadata (confluent-kafka), sorted."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(TOPIC, timeout=15)
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    return sorted(t.partitions[0].isrs)


def produce_all(bootstrap, n, tag):
    """n records with acks=all (confluent-kafka); the last offset acknowledged."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000})
    errors, offsets = [], []

    def dr(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())
    for i in range(n):
        p.produce(TOPIC, value=("%s-%d" % (tag, i)).encode(), partition=0, on_delivery=dr)
    left = p.flush(90)
    check(left == 0 and not errors, "acks=all: %d undelivered, errors %s" % (left, errors[:3]))
    return max(offsets)


def plog_end(b):
    return b.metrics().get('tributary_partition_log_end_offset{topic="%s",partition="0"}' % TOPIC)


def main():
    try:
        import confluent_kafka  # noqa: F401
        import kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("  replica.lag.time.max.ms: %d\n" % LAG_MS)
        cl.start()
        cl.wait_controller([1, 2, 3])
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": cl.bootstrap()})
        fut = admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])
        fut[TOPIC].result(60)
        st = wait_for("a state for %s-0" % TOPIC,
                      lambda: (lambda s: s if s and s["leader"] >= 0 else None)(zk_state(cl)),
                      BOUND)
        leader, epoch = st["leader"], st["leader_epoch"]
        check(sorted(st["isr"]) == [1, 2, 3], "first ISR %s" % st["isr"])
        fa, fb = [i for i in (1, 2, 3) if i != leader]
        lb = cl.broker(leader)
        lraw = Raw(lb.bootstrap)
        wait_for("broker %d leads %s-0" % (leader, TOPIC),
                 lambda: list_latest(lraw)[0] == 0, BOUND)
        log("step 0: leader %d at epoch %d, followers %d and %d" % (leader, epoch, fa, fb))

        # 1. acks=all: acknowledged once the followers have it.
        last = produce_all(cl.bootstrap(), 200, "a")
        for fid in (fa, fb):
            end = plog_end(cl.broker(fid))
            check(end is not None and end >= last + 1, "follower %d's log ends at %s right "
                  "after offset %d was acknowledged" % (fid, end, last))
        # Followers paused (well inside the lag time): a raw acks=all waits, consumers see
        # nothing past the high watermark.
        hw0 = list_latest(lraw)[1]
        check(hw0 == last + 1, "high watermark %d after %d acknowledged" % (hw0, last + 1))
        cl.broker(fa).pause()
        cl.broker(fb).pause()
        prod = Raw(lb.bootstrap)
        corr = produce_send(prod, -1, batch(5, "p"))
        wait_for("the leader's log end past the paused followers",
                 lambda: plog_end(lb) == hw0 + 5, BOUND)
        err, hw, recs = fetch(lraw, hw0)
        check(err == 0 and hw == hw0 and not recs, "a consumer read past the high watermark: "
              "HW %d (was %d), %d bytes" % (hw, hw0, len(recs)))
        check(list_latest(lraw)[1] == hw0, "ListOffsets latest past the high watermark")
        check(not prod.readable(), "acks=all answered while both followers were paused")
        cl.broker(fa).resume()
        cl.broker(fb).resume()
        e, base = produce_recv(prod, corr)
        check(e == 0 and base == hw0, "acks=all after the resume: error %d offset %d" % (e, base))
        err, hw, recs = fetch(lraw, hw0)
        check(hw >= hw0 + 5 and count_records(recs) == 5, "after the resume: HW %d, %d records"
              % (hw, count_records(recs)))
        log("step 1: acks=all acknowledged only with the followers; consumers below the HW")

        # 2. One follower paused past the lag time leaves the ISR; acks=all goes on.
        shrinks = metric(lb, "tributary_isr_shrinks_total")
        cl.broker(fb).pause()
        e, _ = produce_recv(prod, produce_send(prod, 1, batch(1, "behind")))
        check(e == 0, "acks=1: error %d" % e)
        wait_for("ISR without %d in ZooKeeper" % fb,
                 lambda: sorted(zk_state(cl)["isr"]) == sorted([leader, fa]), BOUND)
        check(metric(lb, "tributary_isr_shrinks_total") > shrinks, "no shrink counted")
        check(metric(lb, "tributary_under_replicated_partitions") >= 1,
              "no under-replicated partition counted")
        wait_for("Metadata ISR without %d" % fb, lambda: md_isr(lb) == sorted([leader, fa]),
                 BOUND)
        last = produce_all(lb.bootstrap, 10, "b")
        log("step 2: ISR [%d, %d]; acks=all up to %d" % (leader, fa, last))

        # 3. Both paused: the leader alone: NOT_ENOUGH_REPLICAS.
        cl.broker(fa).pause()
        e, _ = produce_recv(prod, produce_send(prod, 1, batch(1, "behind")))
        check(e == 0, "acks=1: error %d" % e)
        wait_for("ISR of the leader alone", lambda: zk_state(cl)["isr"] == [leader], BOUND)
        from kafka import KafkaProducer
        from kafka.errors import NotEnoughReplicasError
        kp = KafkaProducer(bootstrap_servers=lb.bootstrap, acks="all", retries=0)
        try:
            kp.send(TOPIC, b"refused", partition=0).get(timeout=60)
            raise TestFailure("acks=all succeeded with the ISR [%d] and min.insync 2" % leader)
        except NotEnoughReplicasError:
            pass
        finally:
            kp.close()
        log("step 3: ISR [%d]: NOT_ENOUGH_REPLICAS" % leader)

        # 4. Resumed: both catch up and rejoin.
        expands = metric(lb, "tributary_isr_expands_total")
        cl.broker(fa).resume()
        cl.broker(fb).resume()
        wait_for("ISR [1, 2, 3] again", lambda: sorted(zk_state(cl)["isr"]) == [1, 2, 3], BOUND)
        wait_for("Metadata ISR [1, 2, 3]", lambda: md_isr(lb) == [1, 2, 3], BOUND)
        check(metric(lb, "tributary_isr_expands_total") >= expands + 2, "expansions not counted")
        st = zk_state(cl)
        check(st["leader"] == leader, "leadership moved to %d" % st["leader"])
        epoch = st["leader_epoch"]
        wait_for("high watermark at the log end", lambda: list_latest(lraw)[1] == plog_end(lb),
                 BOUND)
        log("step 4: ISR [1, 2, 3] again")

        # 5. OffsetForLeaderEpoch, and what followers refuse.
        err, leo, le = list_latest(lraw, replica=fa)
        check(err == 0 and le == epoch, "ListOffsets as a replica: error %d epoch %d" % (err, le))
        e, got, end = ofle(lraw, epoch, epoch)
        check(e == 0 and got == epoch and end == leo,
              "OffsetForLeaderEpoch(%d): error %d, epoch %d, end %d (log end %d)"
              % (epoch, e, got, end, leo))
        if epoch > 0:
            check(ofle(lraw, epoch - 1, epoch)[0] == FENCED_LEADER_EPOCH, "an older epoch passed")
        check(ofle(lraw, epoch + 1, epoch)[0] == UNKNOWN_LEADER_EPOCH, "a newer epoch passed")
        fr = Raw(cl.broker(fa).bootstrap)
        check(ofle(fr, -1, epoch)[0] == NOT_LEADER_OR_FOLLOWER, "a follower answered "
              "OffsetForLeaderEpoch")
        check(list_latest(fr)[0] == NOT_LEADER_OR_FOLLOWER, "a follower answered ListOffsets")
        check(fetch(fr, 0)[0] == NOT_LEADER_OR_FOLLOWER, "a follower answered a consumer's Fetch")
        check(produce_recv(fr, produce_send(fr, 1, batch(1, "x")))[0] == NOT_LEADER_OR_FOLLOWER,
              "a follower took a Produce")
        fr.close()
        prod.close()
        lraw.close()
        log("step 5: OffsetForLeaderEpoch(%d) = %d; followers refuse" % (epoch, end))
        print(json.dumps({"leader": leader, "epoch": epoch, "log_end": leo}))


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
