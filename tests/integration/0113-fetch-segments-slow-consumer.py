#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Pipelined fetch responses across segments, to a slow consumer, while retention deletes them.

Three partitions with 512 KiB segments hold about 4 MB each, in batches of
varied sizes. One raw client with a 4 KiB receive buffer sends three
requests at once and reads nothing yet:

  A  Fetch v4 of the three partitions: p0 from offset 0, p1 from an offset
     in the middle of a batch in its third segment, p2 from 0; 3,000,001
     bytes per partition and 7,000,003 for the response, so p0 and p1 each
     span several segments and end inside a later one, and p2 is cut by
     the response limit
  B  ApiVersions (an ordinary response, queued behind A)
  C  Fetch v4: p0 from its fourth segment to the end (the range limit, 8
     segments, or the high watermark ends it), p1 at its high watermark
     (no records), p2 from a mid-batch offset with 1,333,333 bytes

The answers (about 11 MB) are larger than the collector's socket buffer
can hold, so its sends stop part way through file ranges and resume there.
A and C are built as the requests arrive (C holds its segments before
any of its bytes are sent). Once the collector's send of A waits for a
full socket (tributary_fetch_send_waits_total grows), retention
(retention.ms 1, checked every 100 ms) deletes every segment of every
partition. Then the client reads the three answers in small, odd-sized
pieces (1 to 4,999 bytes, pausing now and then); the collector's sends
stop part way through file ranges and resume there (a resume from the
wrong file position fails the byte check below). Each partition's records must be exactly the bytes the segment
files held (read before the fetches), starting with the batch that
holds the fetch offset and ending with the last whole batch the limits
allow (emulated from the files, at most 8 segments per partition), every
batch's CRC must hold and every record must be the one produced. The
deleted files are gone from disk afterwards. 0112 covers one partition,
one response.
"""
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, Reader, array, batch, s32, s64, string  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402

TOPIC = "xs"
PARTS = 3
SEGMENT = 512 << 10
BATCHES = 220
VALUE = 900
RANGES = 8  # FETCH_MAX_RANGES in collector/server/api/fetch.c


def records_in(i):
    return 8 + (i * 7) % 25  # batches of 8 to 32 records: sizes vary


def metric(c, name):
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise TestFailure("no metric %s" % name)


def wait_for(what, cond, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TestFailure("timed out waiting for %s" % what)
        time.sleep(0.05)


def segment_files(c, p):
    d = os.path.join(c.data, "%s-%d" % (TOPIC, p))
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))


def snapshot(c, p):
    """The partition's batches as (first, last, segment, bytes), from its files."""
    out = []
    for seg, path in enumerate(segment_files(c, p)):
        data = open(path, "rb").read()
        pos = 0
        while pos < len(data):
            base, length = struct.unpack(">qi", data[pos:pos + 12])
            lod = struct.unpack(">i", data[pos + 23:pos + 27])[0]
            out.append((base, base + lod, seg, data[pos:pos + 12 + length]))
            pos += 12 + length
    return out


def expect(batches, offset, limit, soft):
    """The bytes a fetch at offset returns within limit (soft: the first batch always)."""
    i = next(k for k, b in enumerate(batches) if b[1] >= offset)
    out, segs = [], set()
    got = 0
    for b in batches[i:]:
        if len(segs | {b[2]}) > RANGES:
            break
        if got + len(b[3]) > limit and not (soft and not out):
            break
        out.append(b[3])
        segs.add(b[2])
        got += len(b[3])
    return b"".join(out), len(segs)


def fetch_body(parts, max_bytes):
    body = s32(-1) + s32(0) + s32(1) + s32(max_bytes) + b"\x00"
    return body + array([string(TOPIC) + array([s32(p) + s64(o) + s32(m) for p, o, m in parts])])


def frame(key, version, corr, body):
    hdr = struct.pack(">hhi", key, version, corr) + string("slow-0113")
    return s32(len(hdr) + len(body)) + hdr + body


def check_records(p, data, tags):
    """CRCs and every record against what was produced (tags: base offset -> batch number)."""
    from kafka.record.memory_records import MemoryRecords
    mr = MemoryRecords(data)
    n = 0
    while True:
        b = mr.next_batch()
        if b is None:
            break
        if not b.validate_crc():
            raise TestFailure("p%d: bad CRC in the batch at %d" % (p, b.base_offset))
        i = tags[b.base_offset]
        for j, rec in enumerate(b):
            v = ("p%d-b%d-%d" % (p, i, j)).encode()
            v += b"." * (VALUE - len(v))
            if rec.offset != b.base_offset + j or rec.key != b"k%d" % j or rec.value != v:
                raise TestFailure("p%d: record at offset %d is not the one produced"
                                  % (p, rec.offset))
            n += 1
    return n


def main(c):
    conn = Conn(c.bootstrap)
    err = conn.create_topic(TOPIC, PARTS, configs={"segment.bytes": str(SEGMENT),
                                                   "retention.ms": "-1"})
    if err != (0, None):
        raise TestFailure("create topic: %r" % (err,))
    tags = [{} for _ in range(PARTS)]
    for p in range(PARTS):
        at = 0
        for i in range(BATCHES):
            e, _ = conn.produce(TOPIC, p, batch(records_in(i), "p%d-b%d" % (p, i),
                                                value_size=VALUE))
            if e:
                raise TestFailure("produce: error %d" % e)
            tags[p][at] = i
            at += records_in(i)
    snap = [snapshot(c, p) for p in range(PARTS)]
    hw = [b[-1][1] + 1 for b in snap]
    for p in range(PARTS):
        if len(set(b[2] for b in snap[p])) < 7:
            raise TestFailure("p%d: only %d segments" % (p, len(set(b[2] for b in snap[p]))))

    def mid(p, seg):
        """An offset inside a batch (not its first) in segment seg of partition p."""
        b = next(b for b in snap[p] if b[2] == seg and b[1] > b[0])
        return b[0] + (b[1] - b[0]) // 2

    # The answers the files say each fetch must get.
    a_parts = [(0, 0, 3000001), (1, mid(1, 2), 3000001), (2, 0, 3000001)]
    a_max = 7000003
    c_parts = [(0, next(b[0] for b in snap[0] if b[2] == 3), 50 << 20), (1, hw[1], 1 << 20),
               (2, mid(2, 1), 1333333)]
    want, spans = {}, {}
    for corr, parts, max_bytes in ((1, a_parts, a_max), (3, c_parts, 50 << 20)):
        remaining, total = max_bytes, 0
        for p, off, lim in parts:
            if off >= hw[p]:
                want[(corr, p)] = b""
                continue
            data, nseg = expect(snap[p], off, min(lim, remaining), total == 0)
            want[(corr, p)] = data
            spans[(corr, p)] = nseg
            remaining -= len(data)
            total += len(data)
            log("fetch %d p%d at %d: %d bytes from %d segments" % (corr, p, off, len(data), nseg))
    if spans[(1, 0)] < 3 or spans[(1, 1)] < 3 or spans[(3, 0)] < 3:
        raise TestFailure("the fetches should span several segments: %r" % (spans,))
    old = set(f for p in range(PARTS) for f in segment_files(c, p))

    # The slow consumer sends all three and reads nothing for now.
    host, port = c.bootstrap.rsplit(":", 1)
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(60)
    slow.connect((host, int(port)))
    waits0 = metric(c, "tributary_fetch_send_waits_total")
    slow.sendall(frame(1, 4, 1, fetch_body(a_parts, a_max)) + frame(18, 0, 2, b"") +
                 frame(1, 4, 3, fetch_body(c_parts, 50 << 20)))
    wait_for("the send to find the socket full",
             lambda: metric(c, "tributary_fetch_send_waits_total") > waits0)

    # Retention deletes every segment while A is sent and C waits.
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap, api_version=(2, 5))
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC,
                                            configs={"retention.ms": "1"})])
    finally:
        admin.close()
    other = Conn(c.bootstrap)
    for p in range(PARTS):
        wait_for("retention to move p%d's log start to the end" % p,
                 lambda: other.list_offsets(TOPIC, p, -2)[1] == hw[p])
    log("retention deleted the segments of all %d partitions" % PARTS)

    rng = random.Random(113)
    reads = [0]

    def recv_exact(n):
        out = bytearray()
        while len(out) < n:
            chunk = slow.recv(min(rng.randint(1, 4999), n - len(out)))
            if not chunk:
                raise TestFailure("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
            reads[0] += 1
            if reads[0] % 97 == 0:
                time.sleep(0.002)
        return bytes(out)

    def fetch_answer(corr):
        size = struct.unpack(">i", recv_exact(4))[0]
        r = Reader(recv_exact(size))
        if r.i32() != corr:
            raise TestFailure("answer out of order: expected correlation %d" % corr)
        r.i32()  # throttle
        got = {}

        def part():
            p, e, h = r.i32(), r.i16(), r.i64()
            r.i64()
            r.array(lambda: (r.i64(), r.i64()))
            got[p] = (e, h, r.bytes_())

        r.array(lambda: (r.string(), r.array(part)))
        if r.p != len(r.d):
            raise TestFailure("%d bytes left after answer %d" % (len(r.d) - r.p, corr))
        return got

    nrec = 0
    for corr in (1, 2, 3):
        if corr == 2:
            size = struct.unpack(">i", recv_exact(4))[0]
            r = Reader(recv_exact(size))
            if r.i32() != 2 or r.i16() != 0:
                raise TestFailure("ApiVersions answer out of order or failed")
            continue
        got = fetch_answer(corr)
        if sorted(got) != list(range(PARTS)):
            raise TestFailure("answer %d: partitions %r" % (corr, sorted(got)))
        for p in range(PARTS):
            e, h, data = got[p]
            data = data or b""
            if e != 0 or h != hw[p]:
                raise TestFailure("answer %d p%d: error %d, high watermark %d" % (corr, p, e, h))
            exp = want[(corr, p)]
            if data != exp:
                n = next((i for i in range(min(len(data), len(exp))) if data[i] != exp[i]),
                         min(len(data), len(exp)))
                raise TestFailure("answer %d p%d: records differ from the segment files at byte "
                                  "%d (%d vs %d bytes)" % (corr, p, n, len(data), len(exp)))
            nrec += check_records(p, data, tags[p])
    log("3 answers read in %d pieces; every byte equals the deleted files, %d records checked; "
        "the sends waited for the socket %d times"
        % (reads[0], nrec, metric(c, "tributary_fetch_send_waits_total") - waits0))

    for p in range(PARTS):
        wait_for("p%d's deleted segment files to go" % p,
                 lambda: not (old & set(segment_files(c, p))))
    slow.close()
    other.close()
    conn.close()


if __name__ == "__main__":
    d = tempfile.mkdtemp(prefix="trib-0113.")
    conf = os.path.join(d, "collector.yaml")
    with open(conf, "w") as f:
        f.write("storage:\n  retention_check_interval: 100ms\n")
    try:
        run_test(main, extra_args=["--config", conf])
    finally:
        shutil.rmtree(d, ignore_errors=True)
