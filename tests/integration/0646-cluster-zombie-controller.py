# SPDX-License-Identifier: Apache-2.0
"""A paused controller wakes after a new election and writes nothing (KAFKA-6082):
row 7 of the design's failure table ("two controllers write").

Rule under test: every controller write is a ZooKeeper multi that first
checks /controller_epoch at the version this broker's own election wrote,
so the writes of a controller that lost its term while paused fail.
Tests 0600 (a probe znode written at the lost term's epoch is refused) and
0606 (no state znode carries the old epoch once the woken broker has
caught up) cover parts of this; here the woken ex-controller makes the
write KAFKA-6082 is about, and the znodes are watched while it does.

One ZooKeeper and three collectors (session timeout 6 s), all run with
TRIB_TEST_STALE_CONTROLLER_WRITE=state: a broker whose session expired
while it was the controller writes back, once its new session is set up,
every partition state it still caches with its old controller epoch, in
one multi checked at its lost term's epoch version. Topics `twin` (4
partitions, replication factor 3) and `solo` (4 partitions, factor 2).
  1. the controller C (epoch E0) is SIGSTOPped past its session; another
     broker is elected at E1 > E0 and moves C's leaderships away and C
     out of every ISR (leader epoch + 1, controller_epoch E1): the
     snapshot of every state znode, /controller and /controller_epoch;
  2. C gets SIGCONT while a second ZooKeeper connection reads all those
     znodes every few milliseconds. C must count an expired session, log
     that it is no longer the controller (epoch E0), send the stale multi
     and see it refused (tributary_test_stale_controller_writes_applied_total
     0, the fenced counter >= 1), register again as a non-controller;
  3. nothing C wrote shows: /controller and /controller_epoch keep their
     version and content (the new controller, E1); every state znode
     version seen after the snapshot has controller_epoch >= E1, the
     snapshot's leader and leader epoch, and an ISR that only grew (the
     leaders let C back in); every broker's Metadata matches the state
     znodes.
Without the epoch check the stale multi is applied: states with
controller_epoch E0 and C's old leaderships appear, and step 3 fails.
Every wait is bounded; every process stops however the test ends.
"""
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, admin, check, states, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30
TOPICS = {"twin": (4, 3), "solo": (4, 2)}


def state_paths():
    return [CHROOT + "/brokers/topics/%s/partitions/%d/state" % (t, p)
            for t, (n, _rf) in TOPICS.items() for p in range(n)]


class Watcher(threading.Thread):
    """Reads `paths` over its own ZooKeeper connection until stopped; keeps every
    (path, version, data) it saw that differs from the snapshot."""

    def __init__(self, cl, paths, snapshot):
        super().__init__(daemon=True)
        self.zk = cl.zk.reader()
        self.paths = paths
        self.last = dict(snapshot)
        self.seen = []
        self.reads = 0
        self.error = None
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.is_set():
                for path in self.paths:
                    v = self.zk.get(path)
                    got = (v[1], v[0]) if v else (None, None)
                    if got != self.last[path]:
                        self.seen.append((path,) + got)
                        self.last[path] = got
                self.reads += 1
                time.sleep(0.005)
        except OSError as e:
            self.error = e
        finally:
            self.zk.close()

    def stop(self):
        self.done.set()
        self.join(30)


def verify(snapshot, seen, epoch1):
    """Every (path, version, data) in `seen` is one the new controller (or a leader
    under it) may have written after `snapshot`: /controller and /controller_epoch
    never change; a state keeps its leader and leader epoch, carries a controller
    epoch >= epoch1, and its ISR only grows."""
    for path in (CHROOT + "/controller", CHROOT + "/controller_epoch"):
        changed = [x for x in seen if x[0] == path]
        check(not changed, "%s changed: %s" % (path, changed))
    for path, version, data in seen:
        check(data is not None, "%s deleted" % path)
        s = json.loads(data.decode())
        old = json.loads(snapshot[path][1].decode())
        check(s["controller_epoch"] >= epoch1 and s["leader"] == old["leader"] and
              s["leader_epoch"] == old["leader_epoch"] and set(old["isr"]) <= set(s["isr"]),
              "%s version %d: %s after the new controller's %s" % (path, version, s, old))


def main():
    try:
        from confluent_kafka.admin import NewTopic
    except ImportError:
        raise Skip("confluent-kafka is missing")
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S,
                 extra_env={"TRIB_TEST_STALE_CONTROLLER_WRITE": "state"}) as cl:
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        others = [i for i in ids if i != ctl]
        a = admin(cl.broker(others[0]).bootstrap)
        for f in a.create_topics([NewTopic(t, n, rf) for t, (n, rf) in TOPICS.items()],
                                 request_timeout=60).values():
            f.result(timeout=90)
        zk = cl.zk.reader()
        watcher = None
        try:
            wait_for("every partition led with a full ISR", lambda: all(
                all(s["leader"] >= 0 and len(s["isr"]) == TOPICS[t][1]
                    for s in states(zk, t).values()) for t in TOPICS), BOUND)
            epoch0 = int(zk.get(CHROOT + "/controller_epoch")[0])
            before = {t: states(zk, t) for t in TOPICS}
            led = [(t, p) for t in TOPICS for p, s in before[t].items() if s["leader"] == ctl]
            check(led, "the controller %d leads nothing: %s" % (ctl, before))

            # 1. The controller sleeps past its session; another one takes over.
            c = cl.broker(ctl)
            c.pause()
            try:
                new_ctl = wait_for("a new controller", lambda: (
                    lambda x: x and x != ctl and x)(cl.broker(others[0]).describe()[0]), BOUND)
                epoch1 = int(zk.get(CHROOT + "/controller_epoch")[0])
                check(epoch1 > epoch0, "controller epoch %d -> %d" % (epoch0, epoch1))

                def moved():
                    now = {t: states(zk, t) for t in TOPICS}
                    return all(s["leader"] != ctl and ctl not in s["isr"]
                               for t in TOPICS for s in now[t].values()) and now
                after = wait_for("broker %d's leaderships and ISR places taken away" % ctl,
                                 moved, BOUND)
                for t, p in led:
                    s = after[t][p]
                    check(s["controller_epoch"] == epoch1 and
                          s["leader_epoch"] > before[t][p]["leader_epoch"],
                          "%s-%d moved by the new controller: %s" % (t, p, s))
                paths = state_paths() + [CHROOT + "/controller", CHROOT + "/controller_epoch"]
                snapshot = {}
                for path in paths:
                    v = zk.get(path)
                    snapshot[path] = (v[1], v[0]) if v else (None, None)
                check(int(snapshot[CHROOT + "/controller_epoch"][1]) == epoch1 and
                      json.loads(snapshot[CHROOT + "/controller"][1])["brokerid"] == new_ctl,
                      "/controller %s, /controller_epoch %s" % (
                          snapshot[CHROOT + "/controller"], snapshot[CHROOT + "/controller_epoch"]))
                log("controller %d at epoch %d moved %d leaderships of paused broker %d (epoch "
                    "%d)" % (new_ctl, epoch1, len(led), ctl, epoch0))
                watcher = Watcher(cl, paths, snapshot)
                watcher.start()
            finally:
                c.resume()

            # 2. The woken ex-controller resigns; its stale write is refused.
            wait_for("broker %d registers again after its session expired" % ctl,
                     lambda: c.metrics().get("tributary_cluster_registered") == 1 and
                     c.metrics().get("tributary_zookeeper_session_expirations_total", 0) >= 1,
                     BOUND)
            wait_for("broker %d's stale partition-state write answered" % ctl,
                     lambda: "at the lost term's controller epoch was" in c.log_text(), BOUND)
            # What ZooKeeper holds now, and every version seen since the snapshot.
            fresh = []
            for path in paths:
                v = zk.get(path)
                if ((v[1], v[0]) if v else (None, None)) != snapshot[path]:
                    fresh.append((path,) + ((v[1], v[0]) if v else (None, None)))
            verify(snapshot, list(watcher.seen) + fresh, epoch1)
            text = c.log_text()
            m = re.search(r"test: (\d+) partition states written with controller epoch (\d+)",
                          text)
            check(m and int(m.group(1)) > 0 and int(m.group(2)) == epoch0,
                  "broker %d did not write its cached states back at epoch %d" % (ctl, epoch0))
            check(re.search(r"no longer the controller \(epoch %d\)" % epoch0, text),
                  "broker %d never said it resigned" % ctl)
            mt = c.metrics()
            check(mt.get("tributary_test_stale_controller_writes_applied_total") == 0 and
                  "was APPLIED" not in text,
                  "broker %d's write at controller epoch %d was applied" % (ctl, epoch0))
            check(mt.get("tributary_cluster_controller_writes_fenced_total", 0) >= 1,
                  "broker %d counted no fenced write" % ctl)
            check(mt.get("tributary_cluster_controller") == 0,
                  "broker %d still says it is the controller" % ctl)
            log("broker %d resigned; its %s stale partition states were refused"
                % (ctl, m.group(1)))

            # 3. Nothing it wrote shows; the cluster converges on the new controller's states.
            wait_for("broker %d back in every ISR" % ctl, lambda: all(
                ctl in s["isr"] for t in TOPICS for p, s in states(zk, t).items()
                if ctl in before[t][p]["isr"]), BOUND)

            def caught_up():
                for b in cl.brokers.values():
                    md = admin(b.bootstrap).list_topics(timeout=15).topics
                    for t in TOPICS:
                        want = {p: s["leader"] for p, s in states(zk, t).items()}
                        if t not in md or {p.id: p.leader for p in
                                           md[t].partitions.values()} != want:
                            return False
                return True
            wait_for("every broker's Metadata matches the state znodes", caught_up, BOUND)
            watcher.stop()
            check(watcher.error is None, "the watching connection failed: %s" % watcher.error)
            check(watcher.reads > 0, "the znodes were never read while broker %d woke" % ctl)
            verify(snapshot, watcher.seen, epoch1)
            log("%d reads of %d znodes while broker %d woke: %d new versions, all leaders' ISR "
                "changes at controller epoch %d" % (watcher.reads, len(paths), ctl,
                                                    len(watcher.seen), epoch1))
        finally:
            if watcher is not None and watcher.is_alive():
                watcher.stop()
            zk.close()


if __name__ == "__main__":
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
