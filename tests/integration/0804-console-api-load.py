#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The console's JSON API under malformed, oversized, slow and heavy requests.

Malformed: request lines that are not HTTP, bytes that are not text, a
request target longer than the endpoint reads (414, never a shorter path
served in its place), a request head past 8 KiB (431), bad percent escapes
and query values (400), methods other than GET and HEAD (405, a body is not
read), a head that never ends (closed after the endpoint's 10 s), more
connections than the endpoint keeps. Each gets its answer or a closed
connection, and the collector goes on serving.

Heavy: while a producer sends one record at a time (acks=1) and times each,
clients fetch the largest record pages (/api/v1 records with limit 1000,
max_bytes 1 MiB, over values whose JSON is six times their size), the
overview, topics and groups as fast as they can, and slow clients ask for
the largest pages and read them a few KiB at a time. Every produce
succeeds, the fast clients' pages are whole JSON, the collector stays up;
the produce latency (median, p99, max) without and with that load is
printed, not asserted (tests never assert on time).
"""
import http.client
import json
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

import confluent_kafka  # noqa: E402

BIG = "console.big"
N_BIG = 1000
BIG_VALUE = b"\x01" * 1000  # valid UTF-8, each byte a \\u0001 in JSON
RECORDS = "/api/v1/topics/%s/partitions/0/records?limit=1000&max_bytes=1048576" % BIG
SAMPLES = 400


def addr(c):
    host, port = c.metrics.rsplit(":", 1)
    return host, int(port)


def raw(c, data, timeout=15):
    """Sends bytes, returns everything the endpoint answers until it closes."""
    s = socket.create_connection(addr(c), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except ConnectionResetError:
        return out
    finally:
        s.close()


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/1.") else None


def get(c, path, timeout=30):
    conn = http.client.HTTPConnection(*addr(c), timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def serving(c):
    deadline = time.monotonic() + 20
    while True:
        st, body = get(c, "/api/v1/overview")
        # Busy while slow readers still hold answers (at most the endpoint's 10 s).
        if st != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if st != 200 or "topics" not in json.loads(body):
        raise TestFailure("the collector stopped serving /api/v1/overview: %d" % st)
    if not c.alive():
        raise TestFailure("the collector died")


def check_malformed(c):
    cases = [
        (b"\x00\x01\x02\x03\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"\xff\xfe /api/v1/overview HTTP/1.1\r\n\r\n", 405),
        (b"GET /api/v1/topics/\xff\xfe HTTP/1.1\r\n\r\n", 404),
        (b"GET /api/v1/topics/%zz HTTP/1.1\r\n\r\n", 400),
        (b"GET /api/v1/topics/%s/partitions/0/records?limit=99999999999999999999 HTTP/1.1"
         b"\r\n\r\n" % BIG.encode(), 400),
        (b"GET /api/v1/topics/%s/partitions/0/records?max_bytes=1048577 HTTP/1.1\r\n\r\n"
         % BIG.encode(), 400),
        (b"POST /api/v1/overview HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
         405),
        (b"GET /api/v1/overview\r\n\r\n", 200),  # no version: still one GET
        # A target longer than the endpoint reads is refused whole, not served cut.
        (b"GET /api/v1/topics/%s/partitions/0/records?limit=1&pad=%s HTTP/1.1\r\n\r\n"
         % (BIG.encode(), b"x" * 1100), 414),
        (b"GET /api/v1/topics/" + b"x" * 1020 + b"/partitions/0/records HTTP/1.1\r\n\r\n", 414),
        # A head past 8 KiB.
        (b"GET /api/v1/overview HTTP/1.1\r\n" + b"X-Pad: " + b"y" * 9000 + b"\r\n\r\n", 431),
    ]
    for data, want in cases:
        resp = raw(c, data)
        got = status_of(resp)
        if got != want:
            raise TestFailure("%r...: status %r, expected %d (%r)" % (data[:60], got, want,
                                                                      resp[:200]))
        if want != 200 and b"application/json" in resp.split(b"\r\n\r\n", 1)[0]:
            body = resp.split(b"\r\n\r\n", 1)[1]
            if "error" not in json.loads(body):
                raise TestFailure("%r: JSON error without an error field" % data[:60])
    serving(c)
    log("malformed and oversized requests: %d cases answered 400/404/405/414/431 as due"
        % len(cases))
    # A head that never ends is closed (after the endpoint's 10 s), not kept.
    s = socket.create_connection(addr(c), timeout=30)
    s.sendall(b"GET /api/v1/overview HTTP/1.1\r\nX-Slow: ")
    t0 = time.monotonic()
    closed = s.recv(1) == b""
    s.close()
    if not closed:
        raise TestFailure("a request head that never ends got an answer")
    log("an unfinished head was closed after %.1f s" % (time.monotonic() - t0))
    # More connections than the endpoint keeps (64): the extra ones are closed, and
    # the endpoint serves again once they go.
    socks = [socket.create_connection(addr(c), timeout=10) for _ in range(80)]
    time.sleep(0.5)
    dropped = 0
    for s in socks:
        s.settimeout(0.2)
        try:
            if s.recv(1) == b"":
                dropped += 1
        except (socket.timeout, ConnectionResetError):
            pass
    for s in socks:
        s.close()
    if dropped < 80 - 64:
        raise TestFailure("80 idle connections: only %d closed by the endpoint" % dropped)
    serving(c)
    log("80 idle connections: %d closed at once (at most 64 kept)" % dropped)


def produce_latency(c, p, n, seconds=5):
    """Produces records one at a time (acks=1), each waited for, n of them or for `seconds`
    if that is longer: the latencies in ms."""
    lat = []
    end = time.monotonic() + seconds
    for i in range(100000):
        if i >= n and time.monotonic() > end:
            break
        box = []
        t0 = time.monotonic()
        p.produce("console.lat", value=b"x" * 100,
                  on_delivery=lambda err, msg, box=box: box.append(err))
        if p.flush(30) != 0 or not box:
            raise TestFailure("a produce took more than 30 s")
        if box[0] is not None:
            raise TestFailure("produce failed: %s" % box[0])
        lat.append((time.monotonic() - t0) * 1000)
    return lat


def stats(lat):
    s = sorted(lat)
    return "%d produces: median %.2f ms, p99 %.2f ms, max %.2f ms" % (len(s), s[len(s) // 2],
                                                         s[int(len(s) * 0.99) - 1], s[-1])


class Load:
    """Fast clients (whole pages, checked) and slow readers until stop."""

    def __init__(self, c):
        self.c = c
        self.stop = threading.Event()
        self.pages = 0
        self.busy = 0
        self.bytes = 0
        self.slow_bytes = 0
        self.errors = []
        self.threads = []

    def fast(self, paths):
        i = 0
        while not self.stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            try:
                st, body = get(self.c, path)
                if st == 503 and "busy" in json.loads(body)["error"]:
                    self.busy += 1
                    time.sleep(0.1)
                    continue
                if st != 200:
                    raise TestFailure("%s: %d" % (path, st))
                json.loads(body)
                self.pages += 1
                self.bytes += len(body)
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append("%s: %s" % (path, e))
                return

    def slow(self):
        while not self.stop.is_set():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(30)
            try:
                s.connect(addr(self.c))
                s.sendall(("GET %s HTTP/1.1\r\n\r\n" % RECORDS).encode())
                while not self.stop.is_set():
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    self.slow_bytes += len(chunk)
                    time.sleep(0.05)
            except OSError:
                pass
            finally:
                s.close()

    def start(self):
        for paths in ([RECORDS], [RECORDS], ["/api/v1/overview", "/api/v1/topics",
                                             "/api/v1/groups", "/api/v1/sinks",
                                             "/api/v1/producers"]):
            self.threads.append(threading.Thread(target=self.fast, args=(paths,)))
        for _ in range(8):
            self.threads.append(threading.Thread(target=self.slow))
        for t in self.threads:
            t.start()

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def peak_rss(c):
    with open("/proc/%d/status" % c.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return "%.0f MiB" % (int(line.split()[1]) / 1024)
    return "?"


def main(c):
    p = confluent_kafka.Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 0,
                                  "acks": 1})
    c.cli("topics", "create", "--topic", BIG, "--partitions", "1")
    c.cli("topics", "create", "--topic", "console.lat", "--partitions", "1")
    for i in range(N_BIG):
        p.produce(BIG, key=b"k%d" % i, value=BIG_VALUE)
    if p.flush(60) != 0:
        raise TestFailure("could not produce the big records")
    deadline = time.monotonic() + 30
    while True:
        st, body = get(c, RECORDS)
        page = json.loads(body)
        if (st == 200 and len(page["records"]) == N_BIG) or time.monotonic() > deadline:
            break
        log("the records page has %d records (high watermark %s), waiting"
            % (len(page.get("records", [])), page.get("high_watermark")))
        time.sleep(0.5)
    if st != 200 or len(page["records"]) != N_BIG:
        raise TestFailure("records page: %d, %d records: %r" % (st, len(page.get("records", [])), {k: v for k, v in page.items() if k != "records"}))
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        st, body = get(c, RECORDS)
        times.append((time.monotonic() - t0) * 1000)
        time.sleep(1)
    log("the largest records page: %d records, %.1f MiB of JSON, served in %s ms"
        % (len(page["records"]), len(body) / 1048576, ", ".join("%.0f" % t for t in times)))
    check_malformed(c)
    produce_latency(c, p, 50, 0)  # warm-up
    base = produce_latency(c, p, SAMPLES)
    log("produce latency, idle API: %s" % stats(base))
    load = Load(c)
    load.start()
    time.sleep(1)
    try:
        loaded = produce_latency(c, p, SAMPLES)
    finally:
        load.end()
    log("produce latency while 3 clients fetched %d pages (%.0f MiB; %d answers 503 busy) and "
        "8 slow readers read %.1f MiB: %s; the collector's peak RSS %s"
        % (load.pages, load.bytes / 1048576, load.busy, load.slow_bytes / 1048576,
           stats(loaded), peak_rss(c)))
    if load.errors:
        raise TestFailure("API clients under load: %s" % load.errors[:5])
    # Every timed produce is in the log, once.
    want = 50 + len(base) + len(loaded)
    # Right after the load the second's page budget may be spent: 503 busy
    # until the next second.
    deadline = time.monotonic() + 20
    while True:
        status, body = get(c, "/api/v1/topics/console.lat")
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if status != 200:
        raise TestFailure("GET /api/v1/topics/console.lat after the load: %d %r"
                          % (status, body[:200]))
    topic = json.loads(body)
    if topic["partitions"][0]["high_watermark"] != want:
        raise TestFailure("console.lat holds %d records, %d were produced"
                          % (topic["partitions"][0]["high_watermark"], want))
    serving(c)


run_test(main)
