# SPDX-License-Identifier: Apache-2.0
"""A coordinator cut off from ZooKeeper takes no offset commits (three
brokers, lib/zk_cluster.py, session timeout 6 s).

Each collector reaches ZooKeeper through its own TCP relay in this test,
so one of them can lose ZooKeeper while its followers still fetch from
it (they have their sessions). Produce refuses such a leader's writes
(it cannot know it still leads: another broker may lead a later epoch
already); the group coordinator must refuse them the same way:
  1. a standalone commit of 10 (OffsetCommit v2) to the coordinator A is
     acknowledged;
  2. A's relay is cut: every connection closed, new ones closed at once.
     Once A's /metrics says its session is not connected, commits of 20
     to A are refused with a retriable error (its followers would have
     copied the record and let the high watermark pass it: the commit
     would have been acknowledged by a leader without a session);
     OffsetFetch on A still answers 10 (the group stays loaded);
  3. the relay is back before the session expires: A reconnects and,
     once it has read the partition's state again, acknowledges a commit
     of 30; whoever coordinates then serves 30, and 20 was never served.
Every wait is bounded; every process stops however the test ends.
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, run, wait_for  # noqa: E402
from group_failover import (NONE, RETRIABLE, group_partition, need_client,  # noqa: E402
                            offset_commit, offset_fetch, offsets_state, start_with_topic,
                            wait_coordinator)

TOPIC = "events"
GROUP = "zk-cut"


class Relay:
    """A TCP relay from a loopback port to ZooKeeper's; cut() closes every
    connection and closes new ones at once, until restore()."""

    def __init__(self, zk):
        self.zk = zk
        self.cut_off = False
        self.conns = []
        self.lock = threading.Lock()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def connect(self):
        return "127.0.0.1:%d%s" % (self.port, CHROOT)

    def accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            if self.cut_off:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.zk.port), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self.pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.cut_off = True
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []

    def restore(self):
        self.cut_off = False

    def close(self):
        self.closed = True
        self.cut()
        self.ls.close()


def session_state(b):
    return b.metrics().get("tributary_zookeeper_session_state")


def main():
    need_client()
    relays = []
    try:
        with Cluster(brokers=3, session_timeout="6s") as cl:
            for b in cl.brokers.values():
                r = Relay(cl.zk)
                relays.append(r)
                b.zk = r  # the collector connects to ZooKeeper through it
            start_with_topic(cl, TOPIC)
            a, _ = wait_coordinator(cl, GROUP)
            pi = group_partition(GROUP)
            wait_for("__consumer_offsets-%d with all three replicas in sync" % pi,
                     lambda: len((offsets_state(cl, GROUP) or {}).get("isr", [])) == 3, 60)
            aaddr = cl.broker(a).bootstrap
            err = offset_commit(aaddr, GROUP, TOPIC, 0, 10)
            check(err == NONE, "step 1: commit of 10 on %d answered %d" % (a, err))
            log("step 1: coordinator %d acknowledged a commit of 10" % a)

            # 2. A cut off from ZooKeeper; its followers still fetch from it.
            relay = relays[a - 1]
            relay.cut()
            t0 = time.monotonic()
            wait_for("broker %d without a ZooKeeper connection" % a,
                     lambda: session_state(cl.broker(a)) != 1, 10, 0.05)
            log("step 2: broker %d lost ZooKeeper after %.1f s (session state %s)"
                % (a, time.monotonic() - t0, session_state(cl.broker(a))))
            answers = []
            while time.monotonic() - t0 < 3.0:
                answers.append(offset_commit(aaddr, GROUP, TOPIC, 0, 20, timeout=10))
                time.sleep(0.2)
            err, offs = offset_fetch(aaddr, GROUP)
            state = session_state(cl.broker(a))
            log("step 2: commits of 20 answered %s; OffsetFetch %d %s; session state %s"
                % (answers, err, offs.get((TOPIC, 0)), state))
            check(state != 1, "broker %d reconnected to ZooKeeper through a cut relay" % a)
            check(NONE not in answers, "step 2: broker %d, cut off from ZooKeeper, acknowledged "
                  "a commit of 20 (answers %s)" % (a, answers))
            check(all(e in RETRIABLE for e in answers),
                  "step 2: a refused commit's error is not retriable: %s" % answers)
            check(err == NONE and offs.get((TOPIC, 0)) == 10,
                  "step 2: OffsetFetch on %d answered %d %s, not 10" % (a, err, offs))

            # 3. Back before the session expires.
            relay.restore()
            wait_for("broker %d connected again" % a,
                     lambda: session_state(cl.broker(a)) == 1, 30, 0.05)

            def committed():
                node, _ = wait_coordinator(cl, GROUP)
                e = offset_commit(cl.broker(node).bootstrap, GROUP, TOPIC, 0, 30)
                return (node,) if e == NONE else None
            (node,) = wait_for("a commit of 30 acknowledged", committed, 60, 0.2)
            node, offs = wait_coordinator(cl, GROUP)
            check(offs.get((TOPIC, 0)) == 30, "step 3: coordinator %d serves %s, not 30"
                  % (node, offs.get((TOPIC, 0))))
            log("step 3: broker %d reconnected; coordinator %d acknowledged and serves 30"
                % (a, node))
    finally:
        for r in relays:
            r.close()


if __name__ == "__main__":
    run(main, failures=(TestFailure,))
