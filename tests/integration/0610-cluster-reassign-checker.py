# SPDX-License-Identifier: Apache-2.0
"""Partition reassignment under load, judged by the cluster checker.

Three collectors and one ZooKeeper (lib/queue_workload.py's cluster), one
topic of 12 partitions, replication factor 3, min.insync.replicas 2; four
idempotent acks=all confluent-kafka producers and two consumers run the
whole time. Then:

  1. move   a fourth collector starts; `tributary partitions reassign
            --move-from 1 --to 4 --wait` moves broker 1's replica of every
            partition (all 12) onto it: broker 4 copies the logs, joins the
            ISRs, broker 1's replicas are dropped and the partitions it led
            get a leader among the others. Broker 1 then holds nothing.
  2. drain  `tributary cluster drain --broker 2 --wait` moves every replica
            of broker 2 (of every topic) to the least loaded broker (1):
            afterwards broker 2 leads nothing, is in no ISR and in no replica
            list, and its /metrics say it leads 0 partitions. It is then
            stopped with SIGTERM.

After that: every partition is read from its start, the three remaining
brokers stop and tributary-replica-check compares their data dirs up to the
high watermark. lib/checker.py's verdict must be clean (0 acknowledged
writes lost, no duplicates, no order inversions, no stale reads, no replica
divergence), and no producer may have had a failed delivery: neither the
moves nor stopping the drained broker shows as an error to a client.

Printed (not asserted, tests never assert on time): how long each move took
and the log bytes broker 4 holds afterwards (the checker's records are
small: throughput figures come from 0611).
"""
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import checker  # noqa: E402
from queue_workload import TOPIC, PortBroker, Run  # noqa: E402
from tributary_harness import CLI, SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import wait_for  # noqa: E402


def log_bytes(path):
    """Bytes of record data (the .log segment files) under a data dir."""
    n = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            if f.endswith(".log"):
                try:
                    n += os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
    return n


class ReassignRun(Run):
    def all_list_broker_4(self):
        """True once every live broker's Metadata lists brokers 1-4."""
        from confluent_kafka.admin import AdminClient
        for b in self.brokers.values():
            if not b.alive():
                return False
            a = AdminClient({"bootstrap.servers": "%s:%d" % (b.host, b.kafka_port),
                             "socket.timeout.ms": 3000, "log_level": 2})
            try:
                md = a.list_topics(timeout=5)
            except Exception:  # noqa: B902 - KafkaException: not yet
                return False
            if set(md.brokers) != {1, 2, 3, 4}:
                return False
        return True

    def __init__(self):
        super().__init__(mode="cluster", seed=610, producers=4, consumers=2, partitions=12,
                         rate=40.0, settle_s=4.0)
        self.fault_list = ["move", "drain"]
        self.figures = []

    def cli(self, *args, timeout=300):
        p = subprocess.run([CLI, "-b", self.bootstrap()] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        log("$ tributary %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout[-4000:],
                                             p.stderr[-2000:]))
        if p.returncode != 0:
            raise TestFailure("tributary %s: exit %d" % (" ".join(args), p.returncode))
        return p.stdout

    def all_partitions(self):
        """{(topic, partition): (leader, replicas, isr)} of every topic, from a live broker."""
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": self.bootstrap(), "log_level": 2})
        md = a.list_topics(timeout=10)
        return {(t.topic, p.id): (p.leader, list(p.replicas), list(p.isrs))
                for t in md.topics.values() for p in t.partitions.values()}

    def fault(self, kind):
        h = self.history
        if kind == "move":
            conf = ("cluster:\n  session_timeout: %ds\n  replica.lag.time.max.ms: %d\n"
                    % (self.session_s, self.lag_ms))
            b4 = PortBroker(self.cluster.root, 4, self.cluster.zk, "%ds" % self.session_s,
                            conf_extra=conf)
            self.cluster.brokers[4] = b4
            self.brokers[4] = b4
            b4.spawn()
            b4.wait_ready()
            # Every broker, the controller among them (it checks a reassignment's
            # replicas against the brokers it has seen), lists broker 4.
            wait_for("broker 4 registered on every broker", self.all_list_broker_4, 60, 0.5)
            h.add(type="nemesis", f="move", target=4, phase="start")
            t0 = time.monotonic()
            self.cli("partitions", "reassign", "--topic", TOPIC, "--move-from", "1", "--to", "4",
                     "--wait", "--timeout-ms", "240000", timeout=300)
            secs = time.monotonic() - t0
            h.add(type="nemesis", f="move", target=4, phase="end")
            copied = log_bytes(b4.data)
            self.figures.append("move of 12 partitions onto broker 4 under load: %.1f s, %.2f MiB "
                                "of log on broker 4 afterwards (unthrottled; load %.2f); "
                                "throughput figures come from 0611"
                                % (secs, copied / 2**20, os.getloadavg()[0]))
            out = self.cli("partitions", "status")
            if "Reassignments in progress: 0" not in out:
                raise TestFailure("a reassignment is still listed after --wait")
            parts = self.all_partitions()
            moved = [k for k, v in parts.items() if k[0] == TOPIC]
            if len(moved) != 12:
                raise TestFailure("expected 12 partitions of %s, saw %d" % (TOPIC, len(moved)))
            for k in moved:
                leader, replicas, isr = parts[k]
                if 1 in replicas or 4 not in replicas or len(replicas) != 3:
                    raise TestFailure("%s-%d: replicas %s after moving broker 1's onto 4"
                                      % (k[0], k[1], replicas))
            log("moved: every partition of %s has a replica on broker 4 and none on 1" % TOPIC)
        elif kind == "drain":
            h.add(type="nemesis", f="drain", target=2, phase="start")
            t0 = time.monotonic()
            self.cli("cluster", "drain", "--broker", "2", "--wait", "--timeout-ms", "240000",
                     timeout=300)
            secs = time.monotonic() - t0
            self.figures.append("drain of broker 2: %.1f s" % secs)
            parts = self.all_partitions()
            for (t, p), (leader, replicas, isr) in parts.items():
                if leader == 2 or 2 in isr or 2 in replicas:
                    raise TestFailure("%s-%d after the drain: leader %d, replicas %s, isr %s"
                                      % (t, p, leader, replicas, isr))
            m = self.brokers[2].metrics()
            if m.get("tributary_leader_partitions", 0) != 0:
                raise TestFailure("broker 2 reports %s led partitions after the drain"
                                  % m.get("tributary_leader_partitions"))
            log("drained: broker 2 leads nothing and is in no ISR or replica list (%d partitions "
                "looked at)" % len(parts))
            b2 = self.brokers.pop(2)
            b2.kill("TERM")
            h.add(type="nemesis", f="drain", target=2, phase="end")
        else:
            super().fault(kind)


def main():
    run = ReassignRun()
    try:
        res = run.execute()
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        if run.history.events:
            print(checker.summary_text(checker.analyze(run.history.events)))
        return 1
    print(checker.summary_text(res))
    for f in run.figures:
        log("figure: %s" % f)
    failed = [e for e in run.history.events if e["type"] in ("fail", "info")]
    errors = sum(1 for e in run.history.events
                 if e["type"] == "note" and e.get("what") == "producer-fatal")
    if res["unhealed"]:
        log("FAIL: the cluster did not heal after: %s" % ", ".join(res["unhealed"]))
        return 1
    if res["counts"]["acknowledged"] < 100:
        log("FAIL: only %d writes acknowledged" % res["counts"]["acknowledged"])
        return 1
    if not res["ok"]:
        log("FAIL: anomalies: %s" % {k: v for k, v in res["anomaly_counts"].items() if v})
        return 1
    if failed or errors:
        log("FAIL: %d failed deliveries (first: %s), %d fatal producer errors"
            % (len(failed), failed[:3], errors))
        return 1
    log("PASS: %d writes acknowledged, none lost, no producer error"
        % res["counts"]["acknowledged"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
