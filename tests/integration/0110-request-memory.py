#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Request memory is bounded across all connections (queued_max_request_bytes).

The collector runs with a 64 MiB pool and max_request_bytes 200 MiB. 300
connections (no SASL, no ApiVersions: anyone who can connect) each declare
a 100 MB Produce request and send up to 4 MiB of it, as fast as the
collector takes it. Without a shared bound the collector would read 4 MiB
into each (1.2 GB); with it, one large request proceeds (alone, as Kafka's
pool allows when it is larger than the pool) and the others wait, not
read: the collector's RSS (VmRSS and its peak VmHWM) stays under the
pool, its per-connection buffers and a fixed margin, and the metrics show
the waiting connections. Meanwhile a confluent-kafka producer delivers
2000 messages and a consumer reads them back: small requests draw on the
quarter of the pool kept for them. The admitted request that stops
arriving is closed after request_timeout (5 s here), which hands its
memory to the next waiter; the timeout counter shows it.
"""
import os
import resource
import select
import shutil
import socket
import struct
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

POOL = 64 << 20
CONNS = 300
DECLARED = 100_000_000
SEND = 4 << 20
RBUF = 64 << 10  # the collector's per-connection read buffer (conn.c)
MARGIN = 48 << 20  # the normal clients' requests and responses, allocator slack


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def metric(c, name):
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise TestFailure("metric %s missing" % name)


def frame_start():
    # Size prefix, then a Produce v7 header; the body never completes.
    hdr = struct.pack(">hhi", 0, 7, 1) + struct.pack(">h", 4) + b"evil"
    return struct.pack(">i", DECLARED) + hdr


def push(socks, sent, rounds):
    """Sends what the kernel takes, until no socket has taken anything for a while."""
    chunk = b"\0" * (256 << 10)
    idle = 0
    for _ in range(rounds):
        want = [s for s in socks if sent[s] < SEND]
        if not want:
            return
        _, w, _ = select.select([], want, [], 0.5)
        moved = 0
        for s in w:
            try:
                n = s.send(chunk[:min(len(chunk), SEND - sent[s])])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                sent[s] = SEND  # closed by the collector (request_timeout)
                continue
            sent[s] += n
            moved += n
        idle = idle + 1 if moved == 0 else 0
        if idle >= 4:
            return


def normal_clients(c):
    from confluent_kafka import Consumer, Producer, TopicPartition
    delivered = []
    p = Producer({"bootstrap.servers": c.bootstrap, "message.timeout.ms": 60000,
                  "linger.ms": 5})
    for i in range(2000):
        p.produce("normal", key=b"k%d" % (i % 50), value=b"v%d" % i,
                  on_delivery=lambda err, m: delivered.append(err))
        p.poll(0)
    left = p.flush(90)
    errors = [e for e in delivered if e is not None]
    if left or errors or len(delivered) != 2000:
        raise TestFailure("producer: %d delivered, %d errors (%r), %d not flushed"
                          % (len(delivered), len(errors), errors[:3], left))
    log("normal producer: 2000 messages delivered while %d connections were stalled" % CONNS)
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "normal-reader",
                     "auto.offset.reset": "earliest"})
    try:
        cons.assign([TopicPartition("normal", 0)])
        got = 0
        for _ in range(200):
            got += sum(1 for m in cons.consume(500, 0.5) if not m.error())
            if got >= 2000:
                break
        if got != 2000:
            raise TestFailure("consumer read %d of 2000 messages" % got)
        log("normal consumer: read 2000 messages")
    finally:
        cons.close()


def main(c):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < CONNS + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, CONNS + 200), hard))
    pid = c.proc.pid
    # Warm the normal path first, so its one-off allocations are in the baseline.
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.bootstrap})
    p.produce("normal", b"warm-up")
    p.flush(30)
    base = status(pid)
    log("baseline: VmRSS %d MiB, VmHWM %d MiB" % (base["VmRSS"] >> 20, base["VmHWM"] >> 20))
    host, port = c.bootstrap.rsplit(":", 1)
    socks, sent = [], {}
    try:
        for _ in range(CONNS):
            s = socket.create_connection((host, int(port)))
            s.setblocking(False)
            s.send(frame_start())
            socks.append(s)
            sent[s] = 0
        push(socks, sent, 400)
        total = sum(sent.values())
        waiting = metric(c, "tributary_request_memory_waiting_connections")
        used = metric(c, "tributary_request_memory_bytes")
        limit = metric(c, "tributary_request_memory_limit_bytes")
        log("%d connections sent %d MiB in all; collector: %d waiting for memory, %d MiB "
            "reserved of %d MiB" % (CONNS, total >> 20, waiting, int(used) >> 20,
                                    int(limit) >> 20))
        mid = status(pid)
        normal_clients(c)
        push(socks, sent, 40)
        end = status(pid)
        bound = base["VmRSS"] + POOL + CONNS * RBUF + MARGIN
        log("RSS during: %d MiB, after the normal clients: %d MiB, peak (VmHWM) %d MiB; "
            "bound %d MiB" % (mid["VmRSS"] >> 20, end["VmRSS"] >> 20, end["VmHWM"] >> 20,
                              bound >> 20))
        if end["VmHWM"] > bound or mid["VmRSS"] > bound:
            raise TestFailure("the collector's memory passed the bound: peak %d MiB > %d MiB"
                              % (end["VmHWM"] >> 20, bound >> 20))
        if waiting < CONNS - 30:
            raise TestFailure("only %d connections waited for memory" % waiting)
        if limit != POOL:
            raise TestFailure("limit metric %d, expected %d" % (limit, POOL))
        # The admitted request stalls: request_timeout closes it and frees its memory.
        for _ in range(900):
            if metric(c, "tributary_requests_timed_out_total") >= 1:
                break
            time.sleep(0.1)  # polling a metric: there is no event to wait on
        else:
            raise TestFailure("no stalled request was closed by request_timeout")
        log("stalled requests closed by request_timeout: %d"
            % metric(c, "tributary_requests_timed_out_total"))
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    d = tempfile.mkdtemp(prefix="trib-0110.")
    conf = os.path.join(d, "collector.yaml")
    with open(conf, "w") as f:
        f.write("server:\n  queued_max_request_bytes: %d\n  max_request_bytes: 200MiB\n"
                "  request_timeout: 5s\n" % POOL)
    try:
        run_test(main, extra_args=["--config", conf])
    finally:
        shutil.rmtree(d, ignore_errors=True)
