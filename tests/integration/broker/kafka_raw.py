# SPDX-License-Identifier: Apache-2.0
"""A raw Kafka wire client for the integration tests (0100-0199, and the cluster
tests that send what no client library does: 0620, 0644).

Real clients hide what the broker answers: they retry, reconnect and turn
error codes into exceptions. These tests need the bytes, so requests are
encoded here by hand (non-flexible versions, request header v1) from the
Kafka schemas, and record batches are built with kafka-python's
DefaultRecordBatchBuilder (an independent implementation of the format).

    conn = Conn("127.0.0.1:9092")
    versions = conn.api_versions()             # {key: (min, max)}
    err, base = conn.produce("t", 0, batch(...), acks=1, version=7)
    err, hw, recs = conn.fetch_epoch("t", 0, offset, epoch=3)    # Fetch v11
    err, off, le = conn.list_latest("t", 0, epoch=3)            # ListOffsets v4
    err, le, end = conn.offset_for_leader_epoch("t", 0, current=3, epoch=2)  # v3
    records(recs) -> [(offset, value)]
    conn.close()

`epoch` is a request's CurrentLeaderEpoch (-1: not checked); `replica` its
ReplicaId (-1: a consumer; a broker id: a follower).
"""
import select
import socket
import struct
import time

NONE = 0
NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


class Closed(Exception):
    """The broker closed the connection."""


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("short response")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn() for _ in range(n)]


def s8(v):
    return struct.pack(">b", v)


def s16(v):
    return struct.pack(">h", v)


def s32(v):
    return struct.pack(">i", v)


def s64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return s16(-1)
    b = s.encode() if isinstance(s, str) else s
    return s16(len(b)) + b


def nbytes(b):
    return s32(-1) if b is None else s32(len(b)) + b


def array(items):
    if items is None:
        return s32(-1)
    return s32(len(items)) + b"".join(items)


def batch(n=3, tag="r", pid=-1, epoch=-1, seq=-1, codec=0, ts=None, value_size=0):
    """One v2 record batch of n records (keys k0.., values <tag>-<i>)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 30)
    ts = int(time.time() * 1000) if ts is None else ts
    for i in range(n):
        v = ("%s-%d" % (tag, i)).encode()
        if value_size > len(v):
            v += b"." * (value_size - len(v))
        b.append(i, timestamp=ts + i, key=b"k%d" % i, value=v, headers=[])
    return bytes(b.build())


def shape(ok, what):
    if not ok:
        raise ValueError("%s response shape" % what)


class Conn:
    def __init__(self, bootstrap, timeout=15):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0
        self.fetching = {}  # correlation id -> topic of a fetch_epoch_send

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def frame(self, key, version, body, corr=None):
        if corr is None:
            self.corr += 1
            corr = self.corr
        hdr = s16(key) + s16(version) + s32(corr) + string("tributary-it")
        return s32(len(hdr) + len(body)) + hdr + body, corr

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise Closed("connection closed by the broker")
            out += chunk
        return out

    def read_response(self, corr):
        size = struct.unpack(">i", self.recv_exact(4))[0]
        data = self.recv_exact(size)
        r = Reader(data)
        got = r.i32()
        if got != corr:
            raise ValueError("correlation id %d, expected %d" % (got, corr))
        return r

    def send(self, key, version, body):
        """Sends a request; its correlation id (read the response with recv)."""
        data, corr = self.frame(key, version, body)
        self.sock.sendall(data)
        return corr

    def recv(self, corr):
        return self.read_response(corr)

    def call(self, key, version, body):
        return self.recv(self.send(key, version, body))

    def readable(self):
        """True when a response (or the close) is waiting to be read."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def closed_by_peer(self, timeout=5.0):
        """True when the broker closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # ---- APIs ---------------------------------------------------------------------------

    def api_versions(self, version=0):
        r = self.call(18, version, b"")
        err = r.i16()
        apis = r.array(lambda: (r.i16(), r.i16(), r.i16()))
        if err:
            raise ValueError("ApiVersions error %d" % err)
        return {k: (lo, hi) for k, lo, hi in apis}

    def metadata(self, topics, version=1):
        """{name: (error, [partition indexes])}, plus the controller id."""
        body = array([string(t) for t in topics]) if topics is not None else s32(-1)
        r = self.call(3, version, body)
        r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))
        controller = r.i32()

        def topic():
            err, name, _internal = r.i16(), r.string(), r.i8()
            parts = r.array(lambda: (r.i16(), r.i32(), r.i32(), r.array(r.i32), r.array(r.i32)))
            return name, (err, sorted(p[1] for p in parts))
        return dict(r.array(topic)), controller

    def produce_many(self, topic_parts, acks=1, version=7, txn=None, expect_response=True):
        """topic_parts: {topic: {partition: records}} -> {(t, p): (error, base_offset)}."""
        body = string(txn) if version >= 3 else b""
        body += s16(acks) + s32(10000)
        body += array([string(t) + array([s32(p) + nbytes(recs) for p, recs in parts.items()])
                       for t, parts in topic_parts.items()])
        data, corr = self.frame(0, version, body)
        self.sock.sendall(data)
        if not expect_response:
            return None
        r = self.read_response(corr)
        out = {}
        # v8: RecordErrors [(BatchIndex, message)] and ErrorMessage, by (topic, partition).
        self.record_errors = {}

        def part(t):
            p, err, base = r.i32(), r.i16(), r.i64()
            if version >= 2:
                r.i64()  # log append time
            if version >= 5:
                r.i64()  # log start offset
            if version >= 8:
                recs = r.array(lambda: (r.i32(), r.string()))
                self.record_errors[(t, p)] = (recs, r.string())
            out[(t, p)] = (err, base)
            return None

        def topic():
            t = r.string()
            r.array(lambda: part(t))
        r.array(topic)
        return out

    def produce(self, topic, partition, records, acks=1, version=7):
        res = self.produce_many({topic: {partition: records}}, acks, version,
                                expect_response=acks != 0)
        return None if res is None else res[(topic, partition)]

    def init_producer_id(self, txn=None):
        r = self.call(22, 0, string(txn) + s32(60000))
        r.i32()
        return r.i16(), r.i64(), r.i16()

    def fetch(self, topic, partition, offset, max_wait=0, min_bytes=1, part_max=1 << 20,
              max_bytes=50 << 20, version=4):
        """(error, high watermark, records bytes)."""
        body = s32(-1) + s32(max_wait) + s32(min_bytes) + s32(max_bytes) + b"\x00"
        body += array([string(topic) + array([s32(partition) + s64(offset) + s32(part_max)])])
        r = self.call(1, version, body)
        r.i32()
        res = []

        def part():
            p, err, hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
            r.array(lambda: (r.i64(), r.i64()))
            recs = r.bytes_()
            res.append((err, hw, recs or b""))

        def topic():
            r.string()
            r.array(part)
        r.array(topic)
        return res[0]

    def fetch_epoch_send(self, topic, partition, offset, replica=-1, epoch=-1, max_wait=0):
        """Sends Fetch v11 of one partition; the correlation id (read with fetch_epoch_recv)."""
        body = (s32(replica) + s32(max_wait) + s32(1) + s32(1 << 24) + s8(0) + s32(0) +
                s32(-1) + array([string(topic) + array([s32(partition) + s32(epoch) +
                                                        s64(offset) + s64(-1) + s32(1 << 20)])])
                + s32(0) + string(""))
        corr = self.send(1, 11, body)
        self.fetching[corr] = topic
        return corr

    def fetch_epoch_recv(self, corr):
        """(error, high watermark, record bytes) of a fetch_epoch_send."""
        topic = self.fetching.pop(corr)
        r = self.recv(corr)
        r.i32()
        top, _sid = r.i16(), r.i32()
        shape(top == 0, "Fetch (top-level error %d)" % top)
        shape(r.i32() == 1 and r.string() == topic and r.i32() == 1, "Fetch")
        r.i32()
        err, hw = r.i16(), r.i64()
        r.i64()
        r.i64()
        r.array(lambda: (r.i64(), r.i64()))
        r.i32()
        return err, hw, r.bytes_() or b""

    def fetch_epoch(self, topic, partition, offset, replica=-1, epoch=-1, max_wait=0):
        """Fetch v11 of one partition: (error, high watermark, record bytes)."""
        return self.fetch_epoch_recv(self.fetch_epoch_send(topic, partition, offset, replica,
                                                           epoch, max_wait))

    def list_latest(self, topic, partition, replica=-1, epoch=-1):
        """ListOffsets v4 (latest) of one partition: (error, offset, leader epoch)."""
        body = s32(replica) + s8(0) + array([string(topic) + array([s32(partition) + s32(epoch) +
                                                                    s64(-1)])])
        r = self.call(2, 4, body)
        r.i32()
        shape(r.i32() == 1 and r.string() == topic and r.i32() == 1, "ListOffsets")
        r.i32()
        err, _ts, off, le = r.i16(), r.i64(), r.i64(), r.i32()
        return err, off, le

    def offset_for_leader_epoch(self, topic, partition, current, epoch, replica=-1):
        """OffsetForLeaderEpoch v3 of one partition: (error, leader epoch, end offset)."""
        body = s32(replica) + array([string(topic) + array([s32(partition) + s32(current) +
                                                            s32(epoch)])])
        r = self.call(23, 3, body)
        r.i32()
        shape(r.i32() == 1 and r.string() == topic and r.i32() == 1, "OffsetForLeaderEpoch")
        err, _p, le, end = r.i16(), r.i32(), r.i32(), r.i64()
        return err, le, end

    def fetch_many(self, parts, max_wait=0, min_bytes=1, max_bytes=50 << 20, version=4):
        """parts: [(topic, partition, offset, partition_max_bytes)] -> [(error, hw, records)]."""
        by_topic = {}
        for t, p, off, pmax in parts:
            by_topic.setdefault(t, []).append(s32(p) + s64(off) + s32(pmax))
        body = s32(-1) + s32(max_wait) + s32(min_bytes) + s32(max_bytes) + b"\x00"
        body += array([string(t) + array(ps) for t, ps in by_topic.items()])
        r = self.call(1, version, body)
        r.i32()
        res = []

        def part():
            p, err, hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
            r.array(lambda: (r.i64(), r.i64()))
            recs = r.bytes_()
            res.append((err, hw, recs or b""))

        def topic():
            r.string()
            r.array(part)
        r.array(topic)
        return res

    def delete_records(self, topic, partition, offset):
        """(error, low watermark)."""
        body = array([string(topic) + array([s32(partition) + s64(offset)])]) + s32(10000)
        r = self.call(21, 0, body)
        r.i32()
        res = []

        def part():
            p, low, err = r.i32(), r.i64(), r.i16()
            res.append((err, low))

        def topic():
            r.string()
            r.array(part)
        r.array(topic)
        return res[0]

    def list_offsets(self, topic, partition, ts, version=1):
        body = s32(-1) + array([string(topic) + array([s32(partition) + s64(ts)])])
        r = self.call(2, version, body)
        res = []

        def part():
            p, err, t, off = r.i32(), r.i16(), r.i64(), r.i64()
            res.append((err, off, t))

        def topic():
            r.string()
            r.array(part)
        r.array(topic)
        return res[0]

    def create_topic(self, name, partitions=1, rf=1, configs=None, validate_only=False):
        cfg = [string(k) + string(v) for k, v in (configs or {}).items()]
        body = array([string(name) + s32(partitions) + s16(rf) + array([]) + array(cfg)])
        body += s32(10000) + (b"\x01" if validate_only else b"\x00")
        r = self.call(19, 1, body)
        res = r.array(lambda: (r.string(), r.i16(), r.string()))
        return res[0][1], res[0][2]


def count_records(data):
    """Records in a buffer of whole v2 batches (ignores a partial tail)."""
    n, pos = 0, 0
    while pos + 61 <= len(data):
        length = struct.unpack_from(">i", data, pos + 8)[0]
        if pos + 12 + length > len(data):
            break
        n += struct.unpack_from(">i", data, pos + 57)[0]
        pos += 12 + length
    return n


def batch_offsets(data):
    """(base offset, record count) of each whole batch in a buffer."""
    out, pos = [], 0
    while pos + 61 <= len(data):
        base = struct.unpack_from(">q", data, pos)[0]
        length = struct.unpack_from(">i", data, pos + 8)[0]
        if pos + 12 + length > len(data):
            break
        out.append((base, struct.unpack_from(">i", data, pos + 57)[0]))
        pos += 12 + length
    return out


def records(data):
    """[(offset, value)] of the whole batches in a buffer (kafka-python's decoder)."""
    from kafka.record import MemoryRecords
    out = []
    m = MemoryRecords(data)
    while m.has_next():
        b = m.next_batch()
        if b is None:
            break
        for r in b:
            out.append((r.offset, r.value))
    return out
