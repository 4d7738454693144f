#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fetch: long polls and byte limits, raw on the wire.

Long poll: a fetch at the log end with MaxWaitMs 1500 and nothing produced
answers empty after about 1.5 s; one parked with MaxWaitMs 20000 answers as
soon as another connection produces; one with MinBytes far above what is
produced waits out its MaxWaitMs and returns what is there.

Limits: two partitions hold ten batches of about 10 KB each. With
PartitionMaxBytes 25000 each partition returns its first two whole batches;
with a response MaxBytes of three batches the second partition only gets
what remains (one batch, none when a few bytes short); with PartitionMaxBytes 5000 (below one batch) the first
partition still returns one whole batch (progress) and the second none;
fetching from an offset inside a batch returns that whole batch first.
(Those batches are produced with acks=-1: with storage.fsync ack consumers
read only what is durable, and acks=-1 is answered once it is. The
woken long poll is produced with acks=1: the fsync's completion wakes it.)
"""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, batch, batch_offsets  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: got %r, expected %r" % (what, got, want))
    log("%s: %r" % (what, got))


def main(c):
    conn, prod = Conn(c.bootstrap, timeout=60), Conn(c.bootstrap)
    expect("create", prod.create_topic("lp", 1), (0, None))

    t0 = time.monotonic()
    err, hw, recs = conn.fetch("lp", 0, 0, max_wait=1500, min_bytes=1)
    took = time.monotonic() - t0
    expect("empty long poll", (err, hw, recs), (0, 0, b""))
    if not 1.2 <= took < 10:
        raise TestFailure("empty long poll took %.2f s, expected about 1.5 s" % took)
    log("empty long poll answered after %.2f s" % took)

    def later():
        time.sleep(0.5)
        prod.produce("lp", 0, batch(3, "wake"))

    th = threading.Thread(target=later)
    t0 = time.monotonic()
    th.start()
    err, hw, recs = conn.fetch("lp", 0, 0, max_wait=20000, min_bytes=1)
    took = time.monotonic() - t0
    th.join()
    expect("woken long poll", (err, hw, [n for _, n in batch_offsets(recs)]), (0, 3, [3]))
    if took > 5:
        raise TestFailure("the produce did not wake the fetch (%.2f s)" % took)
    log("woken after %.2f s" % took)

    th = threading.Thread(target=later)
    t0 = time.monotonic()
    th.start()
    err, hw, recs = conn.fetch("lp", 0, 3, max_wait=2000, min_bytes=1 << 20)
    took = time.monotonic() - t0
    th.join()
    expect("MinBytes not reached", (err, hw, [n for _, n in batch_offsets(recs)]), (0, 6, [3]))
    if took < 1.7:
        raise TestFailure("returned after %.2f s although MinBytes was not reached" % took)

    expect("create limits", prod.create_topic("limits", 2), (0, None))
    for p in (0, 1):
        for i in range(10):
            err, base = prod.produce("limits", p, batch(10, "b%d" % i, value_size=1000),
                                     acks=-1)
            if err or base != i * 10:
                raise TestFailure("produce: %d at %d" % (err, base))
    size = len(batch(10, "b0", value_size=1000))
    log("batches of %d bytes" % size)
    parts = [("limits", 0, 0, 25000), ("limits", 1, 0, 25000)]
    res = conn.fetch_many(parts)
    expect("PartitionMaxBytes 25000", [[b for b, _ in batch_offsets(r)] for _, _, r in res],
           [[0, 10], [0, 10]])
    res = conn.fetch_many(parts, max_bytes=3 * size + 100)
    expect("MaxBytes of three batches", [[b for b, _ in batch_offsets(r)] for _, _, r in res],
           [[0, 10], [0]])
    res = conn.fetch_many(parts, max_bytes=3 * size - 100)
    expect("MaxBytes just below three", [[b for b, _ in batch_offsets(r)] for _, _, r in res],
           [[0, 10], []])
    res = conn.fetch_many([("limits", 0, 0, 5000), ("limits", 1, 0, 5000)])
    expect("PartitionMaxBytes below a batch", [[b for b, _ in batch_offsets(r)] for _, _, r in res],
           [[0], []])
    res = conn.fetch_many([("limits", 0, 35, 1)])
    expect("from inside a batch", [b for b, _ in batch_offsets(res[0][2])], [30])
    conn.close()
    prod.close()


if __name__ == "__main__":
    run_test(main)
