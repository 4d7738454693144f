# SPDX-License-Identifier: Apache-2.0
"""Clients through broker faults on a replicated cluster (tests 0681-0683).

    from failoverlib import run_client_test
    run_client_test(Driver())     # exits 0, 1 or 77

One ZooKeeper and three collectors (lib/zk_cluster.py, session timeout
6 s). Three phases, each on its own topic (3 partitions, replication factor
3, min.insync.replicas 2), each with the client's own producer and consumer
running at once, given the cluster as a bootstrap list:
  leader-kill     the leader of partition 0 is SIGKILLed once the producer
                  is half way; started again after the phase;
  leader-term     the leader of partition 0 gets SIGTERM (a controlled
                  shutdown) half way; started again after the phase;
  dead-bootstrap  a broker that is not the controller is SIGKILLed first and
                  stays first in the client's bootstrap list; started again
                  after the phase. It comes last: a group consumer's first
                  use creates __consumer_offsets (replication factor 3),
                  which, as in Kafka (offsets.topic.replication.factor),
                  needs every broker up.
The producer sends N keyed records ("k<i>" -> "<phase>-<i>") at a steady
pace; the client must finish on its own (its own retries, no help from the
test). Then:
  - every record the producer acknowledged is read back by the client's
    consumer and by an independent full read (`tributary consume`);
  - with an idempotent producer, no record is stored twice;
  - before the next phase the killed broker is back in every ISR.
Every wait is bounded; every process stops however the test ends.

A driver has a name, `idempotent`, and
  producer(bootstrap, topic, records) -> handle with .progress() (records
      handed to the client so far) and .finish(timeout) -> (acked values or
      None when it acknowledged all, error text or None);
  consumer(bootstrap, topic, n) -> handle with .finish(timeout) -> (values
      read, error text or None).
"""
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import CLI, SKIP, Skip, TestFailure, broker_available, log  # noqa: E402
from zk_cluster import Cluster, ZooKeeper, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60  # a bound for the cluster to settle, not an expectation
CLIENT_TIMEOUT = 60          # for a client to finish its work through a fault
N = 3000
PARTITIONS = 3


def cli(bootstrap, *args):
    p = subprocess.run([CLI, "--bootstrap", bootstrap] + list(args), capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        raise ValueError("tributary %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                         p.stderr.strip()))
    return p.stdout


def partitions(bootstrap, topic):
    """[(partition, leader, replicas, isr, status)] from `tributary topics describe`."""
    out = []
    for line in cli(bootstrap, "topics", "describe", topic).splitlines():
        if line.startswith("\tTopic: "):
            f = dict(c.split(": ", 1) for c in line[1:].split("\t"))
            ids = lambda s: [int(x) for x in s.split(",")] if s else []  # noqa: E731
            out.append((int(f["Partition"]), -1 if f["Leader"] == "none" else int(f["Leader"]),
                        ids(f["Replicas"]), ids(f["Isr"]), f["Status"]))
    return out


def records(phase):
    return [(b"k%d" % i, b"%s-%d" % (phase.encode(), i)) for i in range(N)]


def read_all(bootstrap, topic):
    """Every record of topic, read by the tributary CLI: [value]."""
    p = subprocess.run([CLI, "--bootstrap", bootstrap, "consume", "--topic", topic,
                        "--from-beginning", "--exit-at-end", "--timeout-ms", "60000"],
                       capture_output=True, timeout=180)
    if p.returncode != 0:
        raise TestFailure("tributary consume %s: exit %d: %s"
                          % (topic, p.returncode, p.stderr.decode(errors="replace")))
    return [l for l in p.stdout.split(b"\n") if l]


class Run:
    def __init__(self, cl, driver):
        self.cl = cl
        self.d = driver

    def healthy(self, topics):
        boot = self.cl.bootstrap()

        def ok():
            for t in topics:
                ps = partitions(boot, t)
                if len(ps) != PARTITIONS or any(p[4] != "ok" for p in ps):
                    return None
            return True
        wait_for("every partition of %s fully in sync" % topics, ok, BOUND, 0.3)

    def create(self, topic):
        boot = self.cl.bootstrap()
        cli(boot, "topics", "create", "--topic", topic, "--partitions", str(PARTITIONS),
            "--replication-factor", "3", "--config", "min.insync.replicas=2")
        self.healthy([topic])

    def phase(self, name, fault):
        topic = "%s-%s" % (self.d.name, name)
        self.create(topic)
        ids = sorted(self.cl.brokers)
        ctl = self.cl.wait_controller([b.id for b in self.cl.live()])
        leader0 = [p for p in partitions(self.cl.bootstrap(), topic) if p[0] == 0][0][1]
        victim = leader0 if fault != "dead-bootstrap" else [i for i in ids if i != ctl][0]
        vb = self.cl.broker(victim)
        order = [vb.bootstrap] + [self.cl.broker(i).bootstrap for i in ids if i != victim]
        boot = ",".join(order)
        if fault == "dead-bootstrap":
            vb.kill("KILL")
            wait_for("broker %d out of every ISR of %s" % (victim, topic),
                     lambda: all(victim not in p[3] and p[1] >= 0
                                 for p in partitions(self.cl.bootstrap(), topic)), BOUND, 0.3)
        recs = records(name)
        log("%s: %s, bootstrap %s, broker %d %s" % (self.d.name, name, boot, victim,
                                                    "dead" if fault == "dead-bootstrap" else
                                                    "to fault"))
        cons = self.d.consumer(boot, topic, N)
        prod = self.d.producer(boot, topic, recs)
        if fault != "dead-bootstrap":
            wait_for("the producer half way", lambda: prod.progress() >= N // 2, CLIENT_TIMEOUT,
                     0.02)
            vb.kill("KILL" if fault == "leader-kill" else "TERM")
            log("%s: broker %d (leader of %s/0) stopped by SIG%s" % (
                self.d.name, victim, topic, "KILL" if fault == "leader-kill" else "TERM"))
        deadline = time.monotonic() + CLIENT_TIMEOUT
        acked, perr = prod.finish(CLIENT_TIMEOUT)
        check(perr is None, "%s %s: the producer did not finish on its own: %s"
              % (self.d.name, name, perr))
        sent = [v for _, v in recs]
        acked = sent if acked is None else acked
        check(set(acked) <= set(sent), "acknowledged values that were never sent")
        got, cerr = cons.finish(max(1, deadline - time.monotonic()))
        check(cerr is None, "%s %s: the consumer did not finish on its own: %s"
              % (self.d.name, name, cerr))
        missing = set(acked) - set(got)
        check(not missing, "%s %s: %d acknowledged records not read by the client's consumer, "
              "e.g. %s" % (self.d.name, name, len(missing), sorted(missing)[:5]))
        # The broker comes back (same port) and catches up.
        vb.extra = ["--listen", vb.bootstrap]
        wait_for("broker %d starts again" % victim, lambda: restart(vb), BOUND, 0.5)
        self.healthy([topic])
        stored = read_all(self.cl.bootstrap(), topic)
        lost = set(acked) - set(stored)
        check(not lost, "%s %s: %d acknowledged records lost, e.g. %s"
              % (self.d.name, name, len(lost), sorted(lost)[:5]))
        dups = len(stored) - len(set(stored))
        if self.d.idempotent:
            check(dups == 0, "%s %s: %d records stored twice by an idempotent producer"
                  % (self.d.name, name, dups))
        log("%s: %s: %d acknowledged, all read by the client and stored (%d stored, %d "
            "duplicates)" % (self.d.name, name, len(acked), len(stored), dups))


def restart(b):
    """Starts b; False when it is refused because its old registration still lives."""
    try:
        b.start()
    except TestFailure as e:
        log("broker %d: %s; again" % (b.id, e))
        return False

    def registered_or_exited():
        if b.proc.poll() is not None:
            return "exited"
        return "ok" if b.metrics().get("tributary_cluster_registered") == 1 else None
    if wait_for("broker %d registered" % b.id, registered_or_exited, BOUND, 0.05) == "ok":
        return True
    b.proc = None
    return False


def run_client_test(driver):
    rc = 0
    try:
        broker_available()
        ZooKeeper.available()
        driver.available()
        with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
            cl.start()
            cl.wait_controller()
            r = Run(cl, driver)
            for name in ("leader-kill", "leader-term", "dead-bootstrap"):
                r.phase(name, name)
    except Skip as e:
        log("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        rc = 1
    if rc == 0:
        log("PASS")
    sys.exit(rc)


class Paced:
    """Hands records to send(key, value) at a steady pace in a thread."""

    def __init__(self, recs, send, seconds=8.0):
        import threading
        self.recs = recs
        self.sent = 0
        self.error = None
        self.send = send
        self.gap = seconds / len(recs)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        t0 = time.monotonic()
        try:
            for i, (k, v) in enumerate(self.recs):
                delay = t0 + i * self.gap - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.send(k, v)
                self.sent = i + 1
        except BaseException as e:  # noqa: B902 - reported by finish()
            self.error = "%s: %s" % (type(e).__name__, e)

    def join(self, timeout):
        self.t.join(timeout)
        if self.t.is_alive():
            return "still handing records to the client after %ds" % timeout
        return self.error
