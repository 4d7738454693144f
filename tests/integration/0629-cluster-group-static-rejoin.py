# SPDX-License-Identifier: Apache-2.0
"""A static member's rejoin is answered only once the group's new record
is replicated (three brokers, lib/zk_cluster.py, session timeout 6 s).

A static member (group.instance.id) that comes back with an empty member
id while its group is Stable takes a new id without a rebalance: the
coordinator writes the group with the new id to __consumer_offsets and,
like Kafka (storeGroup's callback), answers the JoinGroup once that
record is below the high watermark; if it cannot be, the member keeps
its old id and the JoinGroup gets an error.
  1. two static members (raw JoinGroup v5 / SyncGroup v3) form a Stable
     generation; the follower's id is F1;
  2. both followers of the group's __consumer_offsets partition are
     paused (SIGSTOP), so nothing the coordinator writes can be
     committed; the follower's instance rejoins with an empty member id:
     the JoinGroup must not be answered NONE (it is answered with an
     error once the write's wait ends); then the followers resume;
  3. a heartbeat with F1 is answered NONE (the member kept its id), and
     the rejoin, sent again, is answered NONE with a new id in the same
     generation.
Every wait is bounded; every process stops however the test ends.
"""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402
from group_failover import (NONE, call, kstr, need_client, offsets_state,  # noqa: E402
                            start_with_topic, wait_coordinator)

TOPIC = "events"
GROUP = "static-rejoin"
REBALANCE_IN_PROGRESS = 27


def nstr(s):
    return struct.pack(">h", -1) if s is None else kstr(s)


def kbytes(b):
    return struct.pack(">i", len(b)) + b


class Reader:
    def __init__(self, data):
        self.d, self.at = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.at)
        self.at += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.at:self.at + n].decode()
        self.at += n
        return s

    def bytes_(self):
        n = self.take(">i")
        b = self.d[self.at:self.at + max(n, 0)]
        self.at += max(n, 0)
        return b


def join(addr, member, instance, timeout=60):
    """JoinGroup v5: (error, generation, leader, member id, [member ids] for the leader)."""
    body = (kstr(GROUP) + struct.pack(">ii", 10000, 30000) + kstr(member) + nstr(instance)
            + kstr("test") + struct.pack(">i", 1) + kstr("p1") + kbytes(b"meta"))
    r = Reader(call(addr, 11, 5, body, timeout))
    r.take(">i")
    err = r.take(">h")
    gen = r.take(">i")
    r.string()
    leader = r.string()
    mid = r.string()
    members = []
    for _ in range(r.take(">i")):
        members.append(r.string())
        r.string()
        r.bytes_()
    return err, gen, leader, mid, members


def sync(addr, gen, member, instance, assignments=()):
    """SyncGroup v3: (error, assignment)."""
    body = (kstr(GROUP) + struct.pack(">i", gen) + kstr(member) + nstr(instance)
            + struct.pack(">i", len(assignments))
            + b"".join(kstr(m) + kbytes(a) for m, a in assignments))
    r = Reader(call(addr, 14, 3, body))
    r.take(">i")
    return r.take(">h"), r.bytes_()


def heartbeat(addr, gen, member, instance):
    """Heartbeat v3: the error."""
    body = kstr(GROUP) + struct.pack(">i", gen) + kstr(member) + nstr(instance)
    r = Reader(call(addr, 12, 3, body))
    r.take(">i")
    return r.take(">h")


def in_threads(*fns):
    out = [None] * len(fns)

    def runner(i, f):
        try:
            out[i] = f()
        except Exception as e:  # noqa: BLE001 - returned to the caller
            out[i] = e
    ts = [threading.Thread(target=runner, args=(i, f)) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    for v in out:
        if isinstance(v, Exception) or v is None:
            raise TestFailure("a group request failed: %r" % (v,))
    return out


def main():
    need_client()
    with Cluster(brokers=3, session_timeout="6s") as cl:
        start_with_topic(cl, TOPIC)
        a, _ = wait_coordinator(cl, GROUP)
        wait_for("the group's __consumer_offsets partition with three replicas in sync",
                 lambda: len((offsets_state(cl, GROUP) or {}).get("isr", [])) == 3, 60)
        addr = cl.broker(a).bootstrap

        # 1. Two static members, a Stable generation.
        j1, j2 = in_threads(lambda: join(addr, "", "inst-1"), lambda: join(addr, "", "inst-2"))
        check(j1[0] == NONE and j2[0] == NONE, "step 1: joins answered %d and %d"
              % (j1[0], j2[0]))
        gen = j1[1]
        lead, fol = (j1, j2) if j1[3] == j1[2] else (j2, j1)
        finst = "inst-2" if fol is j2 else "inst-1"
        linst = "inst-1" if finst == "inst-2" else "inst-2"
        check(len(lead[4]) == 2, "step 1: the leader got members %s" % lead[4])
        s1, s2 = in_threads(
            lambda: sync(addr, gen, lead[3], linst, [(lead[3], b"L"), (fol[3], b"F")]),
            lambda: sync(addr, gen, fol[3], finst))
        check(s1 == (NONE, b"L") and s2 == (NONE, b"F"), "step 1: syncs answered %s %s"
              % (s1, s2))
        f1 = fol[3]
        log("step 1: generation %d on coordinator %d; leader %s, follower %s (%s)"
            % (gen, a, lead[3], f1, finst))

        # 2. Nothing can be committed; the follower's instance rejoins.
        others = [b for b in cl.brokers.values() if b.id != a]
        for b in others:
            b.pause()
        t0 = time.monotonic()
        box = {}

        def rejoin():
            try:
                box["r"] = join(addr, "", finst, timeout=40)
            except Exception as e:  # noqa: BLE001 - reported below
                box["r"] = e
            box["t"] = time.monotonic() - t0
        t = threading.Thread(target=rejoin)
        t.start()
        t.join(12)
        for b in others:
            b.resume()
        t.join(40)
        r = box.get("r")
        check(r is not None and not isinstance(r, Exception),
              "step 2: the rejoin was not answered: %r" % (r,))
        log("step 2: with the followers paused, the rejoin was answered %d after %.1f s "
            "(member id %r)" % (r[0], box["t"], r[3]))
        check(not (r[0] == NONE and box["t"] < 12),
              "step 2: the rejoin was answered NONE (new id %s) %.1f s after it was sent, "
              "while nothing could be replicated" % (r[3], box["t"]))

        # 3. The member kept F1; a rejoin now gets a new id in the same generation.
        if r[0] != NONE:
            hb = heartbeat(addr, gen, f1, finst)
            check(hb == NONE, "step 3: a heartbeat with the old id %s answered %d" % (f1, hb))

            def rejoined():
                x = join(addr, "", finst)
                return x if x[0] == NONE else None
            x = wait_for("the rejoin answered NONE", rejoined, 60, 0.5)
            check(x[1] == gen and x[3] != f1, "step 3: the rejoin got generation %d, id %s"
                  % (x[1], x[3]))
            log("step 3: the old id still heartbeats; the rejoin got %s in generation %d"
                % (x[3], x[1]))


if __name__ == "__main__":
    run(main, failures=(TestFailure,))
