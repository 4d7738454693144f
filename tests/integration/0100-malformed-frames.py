#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile input never crashes the collector and does not disturb other clients.

Against a collector with server.max_request_bytes = 1 MiB, each case is
sent on its own connection: random bytes, a negative size, a zero size, a
size below a header, sizes above max_request_bytes (up to 2 GiB), an
unknown API key, an API this build does not implement (AddPartitionsToTxn), a
version below the advertised range, a body that does not decode, a
truncated frame followed by a close, and a header cut off mid-string. Each
one that can be judged must close its connection; after each, a new
connection still gets ApiVersions answered, and so does a connection held
open across all of them. Then 300 random frames with plausible headers, 200
connections that announce a 1 MiB frame and stall (slowloris), and finally
a real client (kcat) round trip while the stalled connections are still
open. The log must name each closing reason; the metrics endpoint counts
them.
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Closed, Conn, s16, s32, string  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402


def frame(key, version, body, corr=7):
    hdr = s16(key) + s16(version) + s32(corr) + string("fuzz")
    return s32(len(hdr) + len(body)) + hdr + body


def still_serving(c, keep):
    conn = Conn(c.bootstrap)
    try:
        if 0 not in conn.api_versions():
            raise TestFailure("ApiVersions on a new connection lacks Produce")
    finally:
        conn.close()
    if 3 not in keep.api_versions():
        raise TestFailure("the connection held open stopped working")
    if not c.alive():
        raise TestFailure("the collector died")


def main(c):
    keep = Conn(c.bootstrap)
    keep.api_versions()
    rnd = random.Random(4)
    cases = [
        ("random bytes", bytes(rnd.getrandbits(8) for _ in range(5000)), False),
        ("negative size", s32(-5) + b"abcdefgh", True),
        ("zero size", s32(0) + b"\x00" * 16, True),
        ("size below a header", s32(5) + b"\x00\x12\x00\x00\x00", True),
        ("2 GiB size", s32(0x7FFFFFFF) + b"\x00\x12\x00\x00", True),
        ("above max_request_bytes", s32((1 << 20) + 1) + b"\x00\x00\x00\x07\x00\x00\x00\x01", True),
        ("unknown API key", frame(999, 0, b""), True),
        ("negative API key", frame(-3, 0, b""), True),
        ("AddPartitionsToTxn (not implemented)", frame(24, 0, b"\x00" * 30), True),
        ("Fetch v1 (below the range)", frame(1, 1, b"\x00" * 30), True),
        ("Produce v99", frame(0, 99, b"\x00" * 30), True),
        ("Produce v7, undecodable body", frame(0, 7, b"\xde\xad\xbe\xef\x00\x01"), True),
        ("Metadata v1, array count past the end", frame(3, 1, s32(1000000) + b"\x00\x01a"), True),
        ("header cut mid client id", s32(12) + s16(18) + s16(0) + s32(1) + s16(50) + b"ab", True),
        ("truncated frame then close", frame(3, 1, s32(-1))[:-2], False),
    ]
    for name, data, must_close in cases:
        conn = Conn(c.bootstrap)
        try:
            conn.send_raw(data)
            closed = conn.closed_by_peer(5.0)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        finally:
            conn.close()
        if must_close and not closed:
            raise TestFailure("%s: the connection was not closed" % name)
        still_serving(c, keep)
        log("%s: %s, still serving" % (name, "closed" if closed else "ignored"))

    # Random frames with plausible headers: answered or closed, never a crash.
    keys = [0, 1, 2, 3, 18, 19, 20, 21, 22, 32, 33, 37, 44, 60]
    outcomes = {"answered": 0, "closed": 0, "silent": 0}
    for i in range(300):
        key = rnd.choice(keys)
        version = rnd.randint(-1, 14)
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300)))
        conn = Conn(c.bootstrap, timeout=5)
        try:
            conn.send_raw(frame(key, version, body, corr=i))
            conn.sock.settimeout(1.0)
            try:
                data = conn.sock.recv(65536)
                outcomes["answered" if data else "closed"] += 1
            except socket.timeout:
                outcomes["silent"] += 1  # e.g. a long-poll fetch that parsed
            except ConnectionResetError:
                outcomes["closed"] += 1
        finally:
            conn.close()
        if i % 50 == 49:
            still_serving(c, keep)
    log("random frames: %s" % outcomes)

    # Slowloris: connections that announce a big frame and stall.
    stalled = []
    for i in range(200):
        host, port = c.bootstrap.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(s32(1 << 20) + s16(0) + s16(7) + s32(i) + b"xx")
        stalled.append(s)
    still_serving(c, keep)

    # A real client round trip meanwhile.
    p = subprocess.run(["kcat", "-b", c.bootstrap, "-P", "-t", "after-abuse"],
                       input=b"one\ntwo\nthree\n", capture_output=True, timeout=60)
    if p.returncode != 0:
        raise TestFailure("kcat -P: %s" % p.stderr.decode())
    p = subprocess.run(["kcat", "-b", c.bootstrap, "-C", "-t", "after-abuse", "-o", "beginning",
                        "-e", "-q"], capture_output=True, timeout=60)
    if p.stdout.split() != [b"one", b"two", b"three"]:
        raise TestFailure("kcat -C read %r" % p.stdout)
    for s in stalled:
        s.close()

    metrics = urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10).read().decode()
    rejected = [l for l in metrics.splitlines() if l.startswith("tributary_requests_rejected_total ")]
    if not rejected or int(rejected[0].split()[1]) < 13:
        raise TestFailure("rejections not counted: %r" % rejected)
    time.sleep(0.2)
    with open(c.logs[-1], "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for words in ["invalid frame size -5", "exceeds max_request_bytes", "unknown API key 999",
                  "AddPartitionsToTxn (API key 24) is not supported", "Fetch v1 is not supported",
                  "cannot decode Produce v7"]:
        if words not in text:
            raise TestFailure("the log does not mention %r" % words)
    keep.close()


if __name__ == "__main__":
    if not shutil.which("kcat"):
        print("[0100] SKIP: kcat is not installed", file=sys.stderr)
        sys.exit(77)
    cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    cfg.write("server:\n  max_request_bytes: 1MiB\n")
    cfg.close()
    try:
        run_test(main, ["--config", cfg.name])
    finally:
        os.unlink(cfg.name)
