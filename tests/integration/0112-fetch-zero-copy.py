#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fetch responses sent from the segment files (sendfile) stay whole and exact.

A topic with 1 MiB segments holds about 10 MiB of 1 KiB records. A raw
client with a 4 KiB receive buffer asks for everything at once (Fetch v4,
50 MiB limits) and reads nothing: the response (whole batches from 8
segments in a row) cannot fit in the socket buffers, so the collector's
send waits for writability (tributary_fetch_send_waits_total grows). While
it waits, retention (retention.ms 1, checked every 100 ms) deletes every
segment the response is being sent from, and the log start moves to the
end. Then the client reads the response slowly: its records must be
exactly the bytes the 8 segment files held (read from disk before the
fetch), every batch's CRC must hold, and every record must be the one
produced. Afterwards the deleted files are gone from disk and a fetch at
offset 0 answers OFFSET_OUT_OF_RANGE. Versions 4-12 and several clients are
covered by the other fetch tests (0105, 0109, 021x, 04xx).
"""
import os
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

TOPIC = "zc"
SEGMENT = 1 << 20
BATCHES = 80
PER_BATCH = 128
VALUE = 1000
RANGES = 8  # FETCH_MAX_RANGES in collector/server/api/fetch.c


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


def segment_files(c):
    d = os.path.join(c.data, "%s-0" % TOPIC)
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))


def expected_value(i, j):
    v = ("b%d-%d" % (i, j)).encode()
    return v + b"." * (VALUE - len(v))


def main(c):
    conn = Conn(c.bootstrap)
    err = conn.create_topic(TOPIC, 1, configs={"segment.bytes": str(SEGMENT),
                                               "retention.ms": "-1"})
    if err != (0, None):
        raise TestFailure("create topic: %r" % (err,))
    for i in range(BATCHES):
        e, _ = conn.produce(TOPIC, 0, batch(PER_BATCH, "b%d" % i, value_size=VALUE))
        if e:
            raise TestFailure("produce: error %d" % e)
    total = BATCHES * PER_BATCH
    files = segment_files(c)
    if len(files) < RANGES + 2:
        raise TestFailure("only %d segments" % len(files))
    expect = b"".join(open(f, "rb").read() for f in files[:RANGES])
    log("%d records in %d segments; the response should hold the first %d (%d bytes)"
        % (total, len(files), RANGES, len(expect)))

    # The slow consumer: a tiny receive buffer, and nothing read for now.
    host, port = c.bootstrap.rsplit(":", 1)
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(60)
    slow.connect((host, int(port)))
    waits0 = metric(c, "tributary_fetch_send_waits_total")
    body = s32(-1) + s32(0) + s32(1) + s32(50 << 20) + b"\x00"
    body += array([string(TOPIC) + array([s32(0) + s64(0) + s32(50 << 20)])])
    hdr = struct.pack(">hhi", 1, 4, 77) + string("zc-slow")
    slow.sendall(s32(len(hdr) + len(body)) + hdr + body)
    wait_for("the send to find the socket full",
             lambda: metric(c, "tributary_fetch_send_waits_total") > waits0)

    # Retention deletes every segment of the response while it is being sent.
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap, api_version=(2, 5))
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC,
                                            configs={"retention.ms": "1"})])
    finally:
        admin.close()
    other = Conn(c.bootstrap)
    wait_for("retention to move the log start to the end",
             lambda: other.list_offsets(TOPIC, 0, -2)[1] == total)
    log("retention deleted the segments; log start is now %d" % total)

    # Now read the response, slowly (4 KiB at a time through a 4 KiB buffer).
    def recv_exact(n):
        out = bytearray()
        while len(out) < n:
            chunk = slow.recv(min(4096, n - len(out)))
            if not chunk:
                raise TestFailure("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return bytes(out)

    size = struct.unpack(">i", recv_exact(4))[0]
    r = Reader(recv_exact(size))
    if r.i32() != 77:
        raise TestFailure("wrong correlation id")
    r.i32()  # throttle
    parts = []

    def part():
        p, e, hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
        r.array(lambda: (r.i64(), r.i64()))
        parts.append((p, e, hw, r.bytes_()))

    r.array(lambda: (r.string(), r.array(part)))
    if r.p != len(r.d):
        raise TestFailure("%d bytes left after the response" % (len(r.d) - r.p))
    if len(parts) != 1 or parts[0][1] != 0:
        raise TestFailure("unexpected partitions: %r" % ([p[:3] for p in parts],))
    data = parts[0][3]
    if data != expect:
        n = next((i for i in range(min(len(data), len(expect))) if data[i] != expect[i]),
                 min(len(data), len(expect)))
        raise TestFailure("records differ from the segment files at byte %d (%d vs %d bytes)"
                          % (n, len(data), len(expect)))
    log("the %d record bytes equal the %d deleted segment files" % (len(data), RANGES))

    from kafka.record.memory_records import MemoryRecords
    mr = MemoryRecords(data)
    nb = nrec = 0
    while True:
        b = mr.next_batch()
        if b is None:
            break
        if not b.validate_crc():
            raise TestFailure("batch %d: bad CRC" % nb)
        for j, rec in enumerate(b):
            if rec.offset != nb * PER_BATCH + j or rec.key != b"k%d" % j or \
                    rec.value != expected_value(nb, j):
                raise TestFailure("record at offset %d is not the one produced" % rec.offset)
            nrec += 1
        nb += 1
    if nrec == 0 or nrec != nb * PER_BATCH:
        raise TestFailure("%d records in %d batches" % (nrec, nb))
    log("%d batches, %d records checked" % (nb, nrec))

    # The deleted files go once the response released them.
    old = set(files)
    wait_for("the deleted segment files to go", lambda: not (old & set(segment_files(c))))
    slow.sendall(s32(len(hdr) + len(body)) + struct.pack(">hhi", 1, 4, 78) +
                 string("zc-slow") + body)
    size = struct.unpack(">i", recv_exact(4))[0]
    r = Reader(recv_exact(size))
    if r.i32() != 78:
        raise TestFailure("wrong correlation id")
    r.i32()
    parts.clear()
    r.array(lambda: (r.string(), r.array(part)))
    if parts[0][1] != 1:
        raise TestFailure("fetch at 0 after retention: error %d, expected 1" % parts[0][1])
    slow.close()
    other.close()
    conn.close()


if __name__ == "__main__":
    d = tempfile.mkdtemp(prefix="trib-0112.")
    conf = os.path.join(d, "collector.yaml")
    with open(conf, "w") as f:
        f.write("storage:\n  retention_check_interval: 100ms\n")
    try:
        run_test(main, extra_args=["--config", conf])
    finally:
        shutil.rmtree(d, ignore_errors=True)
