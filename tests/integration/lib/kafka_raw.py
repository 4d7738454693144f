# SPDX-License-Identifier: Apache-2.0
"""A raw Kafka client for the cluster tests: requests no client library sends.

Non-flexible versions only, one partition per request:

    raw = Raw(broker.bootstrap)
    err, hw, recs = fetch(raw, "topic", 0, offset, epoch=3)        # Fetch v11
    err, off, le = list_latest(raw, "topic", 0, epoch=3)           # ListOffsets v4
    err, le, end = ofle(raw, "topic", 0, current=3, epoch=2)       # OffsetForLeaderEpoch v3
    records(recs) -> [(offset, value)]                             # kafka-python's decoder

`epoch` is the request's CurrentLeaderEpoch (-1: not checked);
`replica` is the ReplicaId (-1: a consumer; a broker id: a follower).
"""
import socket
import struct

NONE = 0
NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


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
    """One connection; call() sends a request and reads its response."""

    def __init__(self, addr, client_id="trib-raw", timeout=60):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.sock.close()

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise OSError("the broker closed the connection")
            out += chunk
        return out

    def send(self, key, version, body):
        self.corr += 1
        hdr = s16(key) + s16(version) + s32(self.corr) + kstr(self.client_id)
        self.sock.sendall(s32(len(hdr) + len(body)) + hdr + body)
        return self.corr

    def recv(self, corr):
        n = struct.unpack(">i", self._exact(4))[0]
        data = self._exact(n)
        got = struct.unpack(">i", data[:4])[0]
        if got != corr:
            raise ValueError("correlation id %d, expected %d" % (got, corr))
        return Reader(data[4:])

    def call(self, key, version, body):
        return self.recv(self.send(key, version, body))


def _shape(ok, what):
    if not ok:
        raise ValueError("%s response shape" % what)


def fetch_send(raw, topic, partition, offset, replica=-1, epoch=-1, max_wait=0):
    """Sends Fetch v11 of one partition; the correlation id (read with fetch_recv)."""
    body = (s32(replica) + s32(max_wait) + s32(1) + s32(1 << 24) + s8(0) + s32(0) + s32(-1) +
            s32(1) + kstr(topic) + s32(1) + s32(partition) + s32(epoch) + s64(offset) +
            s64(-1) + s32(1 << 20) + s32(0) + kstr(""))
    return raw.send(1, 11, body)


def fetch_recv(raw, corr):
    """(error, high watermark, record bytes) of a fetch_send."""
    r = raw.recv(corr)
    r.i32()
    top, _sid = r.i16(), r.i32()
    _shape(top == 0, "Fetch (top-level error %d)" % top)
    r.i32()
    r.string()
    _shape(r.i32() == 1, "Fetch")
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


def fetch(raw, topic, partition, offset, replica=-1, epoch=-1, max_wait=0):
    """Fetch v11 of one partition: (error, high watermark, record bytes)."""
    return fetch_recv(raw, fetch_send(raw, topic, partition, offset, replica, epoch, max_wait))


def list_latest(raw, topic, partition, replica=-1, epoch=-1):
    """ListOffsets v4 (latest) of one partition: (error, offset, leader epoch)."""
    body = (s32(replica) + s8(0) + s32(1) + kstr(topic) + s32(1) + s32(partition) + s32(epoch) +
            s64(-1))
    r = raw.call(2, 4, body)
    r.i32()
    _shape(r.i32() == 1, "ListOffsets")
    r.string()
    _shape(r.i32() == 1, "ListOffsets")
    r.i32()
    err, _ts, off, le = r.i16(), r.i64(), r.i64(), r.i32()
    return err, off, le


def ofle(raw, topic, partition, current, epoch, replica=-1):
    """OffsetForLeaderEpoch v3 of one partition: (error, leader epoch, end offset)."""
    body = s32(replica) + s32(1) + kstr(topic) + s32(1) + s32(partition) + s32(current) + \
        s32(epoch)
    r = raw.call(23, 3, body)
    r.i32()
    _shape(r.i32() == 1, "OffsetForLeaderEpoch")
    r.string()
    _shape(r.i32() == 1, "OffsetForLeaderEpoch")
    err, _p, le, end = r.i16(), r.i32(), r.i32(), r.i64()
    return err, le, end


def records(recs):
    """[(offset, value)] of the complete batches in a Fetch's record bytes."""
    from kafka.record import MemoryRecords
    out = []
    m = MemoryRecords(recs)
    while m.has_next():
        b = m.next_batch()
        if b is None:
            break
        for r in b:
            out.append((r.offset, r.value))
    return out
