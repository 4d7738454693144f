# SPDX-License-Identifier: Apache-2.0
"""One consumer group of confluent-kafka, kafka-python and kafkajs members
through repeated SIGKILLs of its coordinator's collector (three brokers,
lib/zk_cluster.py, session timeout 6 s; --kills N, 3 by default; the
chaos label runs more).

Topic `events`: 6 partitions, replication factor 3, min.insync.replicas
2; an idempotent acks=all producer writes 60 records a second all along.
The group's three members share the "roundrobin" protocol (the name of
librdkafka's and kafka-python's round-robin assignors; js/group_member.js
gives kafkajs one of that name): a confluent-kafka and a kafka-python
consumer (threads here) and a kafkajs one (a node process). Each reads,
commits the offset after what it read (synchronously; kafkajs
commitOffsets) and logs every delivery and every acknowledged commit with
the wall-clock time. A monitor asks the coordinator for the group's
committed offsets (OffsetFetch) every 0.2 s.

Each round waits until every member had a commit acknowledged, then
SIGKILLs the broker that coordinates the group (the leader of its
__consumer_offsets partition), restarts it once the librdkafka and
kafka-python members committed again (at most 30 s), waits until every
member had a commit acknowledged after the kill (the group settled: its
members commit with the generation of a coordinator that loaded the
group), records each member's recovery time, and waits for every ISR to
be whole before the next round. Then the producer stops, the members read to the end and
leave. Checked:
  - no committed offset the monitor saw ever went backwards, and no
    member's acknowledged commits of a partition went backwards;
  - redelivery only from uncommitted offsets: no record was delivered
    to the librdkafka or kafka-python member after a commit past it had
    been acknowledged. kafkajs is not held to it: when its coordinator
    dies it keeps fetching (and retrying its commits against the dead
    broker, "not found in the cached metadata") until its consumer
    crashes and restarts with fresh metadata, long after the group
    removed it for its session; what it was handed meanwhile is
    counted and printed;
  - every produced record was delivered, and the final committed offsets
    are the partitions' ends;
  - each client's recovery times (p50, p99) are printed.
Every wait is bounded; every process stops however the test ends.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, run, states, wait_for  # noqa: E402
from group_failover import (NONE, find_coordinator, group_partition,  # noqa: E402
                            need_client, offset_fetch, offsets_state, wait_coordinator)

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "js")
TOPIC = "events"
GROUP = "mixed-kills"
PARTS = 6
RATE = 60  # records a second


class Journal:
    """What the members report: deliveries, acknowledged commits, failures."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []     # (t, member, partition, offset)
        self.acked = []   # (t, member, partition, next offset)
        self.failed = []  # (t, member, text)

    def delivered(self, member, p, offsets, t=None):
        t = t if t is not None else time.time()
        with self.lock:
            self.got.extend((t, member, p, o) for o in offsets)

    def ack(self, member, p, off, t=None):
        with self.lock:
            self.acked.append((t if t is not None else time.time(), member, p, off))

    def fail(self, member, text, t=None):
        with self.lock:
            self.failed.append((t if t is not None else time.time(), member, text))

    def last_ack(self, member):
        with self.lock:
            ts = [a[0] for a in self.acked if a[1] == member]
        return max(ts) if ts else None


class CKMember(threading.Thread):
    name_ = "confluent-kafka"

    def __init__(self, bootstrap, j):
        super().__init__(daemon=True)
        self.bootstrap, self.j = bootstrap, j
        self.stop = threading.Event()
        self.error = None

    def run(self):
        from confluent_kafka import Consumer, KafkaException, TopicPartition
        try:
            c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP,
                          "auto.offset.reset": "earliest", "enable.auto.commit": False,
                          "session.timeout.ms": 30000,
                          "partition.assignment.strategy": "roundrobin",
                          "topic.metadata.refresh.interval.ms": 1000})
            c.subscribe([TOPIC])
            while not self.stop.is_set():
                msgs = c.consume(num_messages=20, timeout=0.5)
                last = {}
                for m in msgs:
                    if m.error():
                        continue
                    self.j.delivered(self.name_, m.partition(), [m.offset()])
                    last[m.partition()] = m.offset() + 1
                if not last:
                    continue
                try:
                    res = c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in last.items()],
                                   asynchronous=False)
                    for tp in res:
                        if tp.error is None:
                            self.j.ack(self.name_, tp.partition, tp.offset)
                        else:
                            self.j.fail(self.name_, str(tp.error))
                except KafkaException as e:
                    self.j.fail(self.name_, str(e))
                time.sleep(0.2)
            c.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)


class KPMember(threading.Thread):
    name_ = "kafka-python"

    def __init__(self, bootstrap, j):
        super().__init__(daemon=True)
        self.bootstrap, self.j = bootstrap, j
        self.stop = threading.Event()
        self.error = None

    def run(self):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata
        from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
        try:
            c = KafkaConsumer(TOPIC, bootstrap_servers=self.bootstrap.split(","),
                              group_id=GROUP, auto_offset_reset="earliest",
                              enable_auto_commit=False, session_timeout_ms=30000,
                              partition_assignment_strategy=[RoundRobinPartitionAssignor],
                              metadata_max_age_ms=1000, max_poll_records=20)
            while not self.stop.is_set():
                recs = c.poll(timeout_ms=500)
                last = {}
                for tp, ms in recs.items():
                    if ms:
                        self.j.delivered(self.name_, tp.partition, [m.offset for m in ms])
                        last[tp.partition] = ms[-1].offset + 1
                if not last:
                    continue
                try:
                    c.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, "")
                              for p, o in last.items()})
                    for p, o in last.items():
                        self.j.ack(self.name_, p, o)
                except KafkaError as e:
                    self.j.fail(self.name_, repr(e))
                time.sleep(0.2)
            c.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)


class JSMember:
    name_ = "kafkajs"

    def __init__(self, bootstrap, j, tmp):
        self.j = j
        self.error = None
        self.done = False
        self.err = open(os.path.join(tmp, "kafkajs.stderr"), "w+b")
        self.p = subprocess.Popen(
            ["node", os.path.join(JS, "group_member.js"), bootstrap, TOPIC, GROUP],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
            env=dict(os.environ, NODE_PATH=os.path.join(JS, "node_modules")))
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def start(self):
        pass

    def read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            t = ev.get("t", 0) / 1000.0
            if "got" in ev:
                self.j.delivered(self.name_, ev["got"][0], ev["got"][1], t)
            elif "acked" in ev:
                self.j.ack(self.name_, ev["acked"][0], ev["acked"][1], t)
            elif "failed" in ev:
                self.j.fail(self.name_, ev["failed"], t)
            elif "log" in ev:
                log("kafkajs: %s" % ev["log"][:200])
            elif ev.get("done"):
                self.done = True

    def finish(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            self.error = "kafkajs member did not leave within 60 s"
        self.t.join(5)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Monitor(threading.Thread):
    """OffsetFetch on whoever coordinates, every 0.2 s: committed offsets never go back."""

    def __init__(self, cl):
        super().__init__(daemon=True)
        self.cl = cl
        self.stop = threading.Event()
        self.seen = {}
        self.samples = 0
        self.backwards = []

    def run(self):
        while not self.stop.wait(0.2):
            try:
                for b in list(self.cl.live()):
                    err, node = find_coordinator(b.bootstrap, GROUP)
                    if err == NONE:
                        break
                else:
                    continue
                cb = self.cl.brokers.get(node)
                if cb is None or not cb.alive():
                    continue
                err, offs = offset_fetch(cb.bootstrap, GROUP)
            except (OSError, TestFailure, Exception):  # noqa: BLE001 - a broker going away
                continue
            if err != NONE:
                continue
            self.samples += 1
            for (t, p), off in offs.items():
                if t != TOPIC or off < 0:
                    continue
                prev = self.seen.get(p, -1)
                if off < prev:
                    self.backwards.append((p, prev, off, node))
                self.seen[p] = max(prev, off)


def topic_states(cl):
    """The partitions' states of TOPIC, through a new ZooKeeper connection (a reader
    idle past its session would be closed by ZooKeeper)."""
    zk = cl.zk.reader()
    try:
        return states(zk, TOPIC)
    finally:
        zk.close()


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))]


def need_tools():
    need_client()
    try:
        import kafka  # noqa: F401
    except ImportError as e:
        raise Skip("kafka-python missing: %s" % e)
    if not shutil.which("node"):
        raise Skip("node is not installed")
    if not os.path.isdir(os.path.join(JS, "node_modules", "kafkajs")):
        if not shutil.which("npm"):
            raise Skip("kafkajs is not installed and there is no npm")
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS,
                           capture_output=True, timeout=300)
        if r.returncode != 0:
            raise Skip("npm ci in %s failed: %s" % (JS, r.stderr.decode()[-300:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=3)
    args = ap.parse_args()
    need_tools()
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic
    from zk_cluster import admin
    t_start = time.monotonic()
    with Cluster(brokers=3, session_timeout="6s") as cl:
        cl.start()
        for b in cl.brokers.values():
            b.extra = ["--listen", b.bootstrap]  # a restart comes back on the same port
        cl.wait_controller([1, 2, 3])
        boot = cl.bootstrap()
        adm = admin(boot)
        adm.create_topics([NewTopic(TOPIC, PARTS, 3, config={"min.insync.replicas": "2"})],
                          request_timeout=60)[TOPIC].result(timeout=90)
        j = Journal()
        produced = {"n": 0, "error": None}
        pstop = threading.Event()

        def produce():
            try:
                p = Producer({"bootstrap.servers": boot, "acks": "all",
                              "enable.idempotence": True, "linger.ms": 5})
                i = 0
                while not pstop.is_set():
                    for _ in range(RATE // 10):
                        p.produce(TOPIC, ("r%d" % i).encode(), partition=i % PARTS)
                        i += 1
                    p.poll(0)
                    time.sleep(0.1)
                left = p.flush(120)
                if left:
                    produced["error"] = "%d records not delivered" % left
                produced["n"] = i
            except Exception as e:  # noqa: BLE001 - reported by the test
                produced["error"] = repr(e)
        pt = threading.Thread(target=produce, daemon=True)
        members = []
        mon = Monitor(cl)
        tmp = cl.root
        recover = {}
        try:
            wait_for("every partition of %s led" % TOPIC, lambda: all(
                s["leader"] >= 0 for s in topic_states(cl).values()), 60, 0.2)
            pt.start()
            wait_coordinator(cl, GROUP)
            members = [CKMember(boot, j), KPMember(boot, j), JSMember(boot, j, tmp)]
            for m in members:
                m.start()
            mon.start()
            names = [m.name_ for m in members]
            pi = group_partition(GROUP)
            for k in range(args.kills):
                t_round = time.time()
                wait_for("every member committing (round %d)" % (k + 1), lambda: all(
                    (j.last_ack(n) or 0) > t_round for n in names), 120, 0.2)
                coord, _ = wait_coordinator(cl, GROUP)
                t_kill = time.time()
                cl.broker(coord).kill("KILL")

                def settled(who):
                    ts = {}
                    with j.lock:
                        for n in who:
                            after = [a[0] for a in j.acked if a[1] == n and a[0] > t_kill]
                            if not after:
                                return None
                            ts[n] = min(after) - t_kill
                    return ts
                # kafkajs follows a new coordinator only through a crash and a restart
                # with fresh metadata (see below): the killed broker comes back once the
                # other two committed again, or after 30 s.
                try:
                    wait_for("the librdkafka and kafka-python members committing after the "
                             "kill of broker %d" % coord, lambda: settled(names[:2]), 30, 0.1)
                except TestFailure as e:
                    log("%s" % e)
                cl.broker(coord).start()
                ts = wait_for("every member committing after the kill of broker %d" % coord,
                              lambda: settled(names), 240, 0.1)
                for n in names:
                    recover.setdefault(n, []).append(ts[n])
                st = offsets_state(cl, GROUP)
                log("kill %d: broker %d (coordinator) SIGKILLed; __consumer_offsets-%d led by "
                    "%s; first commit acknowledged after %s"
                    % (k + 1, coord, pi, st and st["leader"],
                       ", ".join("%s %.1f s" % (n, ts[n]) for n in names)))
                wait_for("every ISR back to 3 after broker %d came back" % coord, lambda: all(
                    len(s["isr"]) == 3 for s in list(topic_states(cl).values())
                    + [offsets_state(cl, GROUP) or {"isr": []}]), 120, 0.2)
            pstop.set()
            pt.join(150)
            check(produced["error"] is None, "producer: %s" % produced["error"])
            total = produced["n"]
            per = {p: len(range(p, total, PARTS)) for p in range(PARTS)}
            log("%d records produced" % total)

            def drained():
                node, offs = wait_coordinator(cl, GROUP)
                return all(offs.get((TOPIC, p)) == per[p] for p in range(PARTS))
            wait_for("the committed offsets at every partition's end", drained, 180, 0.5)
        finally:
            mon.stop.set()
            pstop.set()
            for m in members:
                if isinstance(m, JSMember):
                    m.finish()
                else:
                    m.stop.set()
            for m in members:
                if not isinstance(m, JSMember):
                    m.join(60)
            for m in members:
                if isinstance(m, JSMember):
                    m.kill()
            mon.join(10)
        with open(os.path.join(cl.root, "journal.json"), "w") as f:
            json.dump({"got": j.got, "acked": j.acked, "failed": j.failed}, f)
        for m in members:
            check(m.error is None, "%s: %s" % (m.name_, m.error))

        # Committed offsets never went back.
        log("monitor: %d OffsetFetch answers" % mon.samples)
        check(not mon.backwards, "committed offsets went backwards (partition, before, after, "
              "coordinator): %s" % mon.backwards[:5])
        check(mon.samples > 0, "the monitor never got an OffsetFetch answer")
        for n in names:
            for p in range(PARTS):
                seq = [a[3] for a in j.acked if a[1] == n and a[2] == p]
                check(seq == sorted(seq), "%s: acknowledged commits of partition %d went "
                      "backwards: %s" % (n, p, seq))
        # Redelivery only from uncommitted offsets.
        acks = sorted(j.acked)
        best = {}
        bad = []
        dups = 0
        seen = set()
        ai = 0
        for t, n, p, o in sorted(j.got):
            while ai < len(acks) and acks[ai][0] <= t:
                best[acks[ai][2]] = max(best.get(acks[ai][2], 0), acks[ai][3])
                ai += 1
            if (p, o) in seen:
                dups += 1
            seen.add((p, o))
            if o < best.get(p, 0):
                bad.append((n, p, o, best[p]))
        zombie = [b for b in bad if b[0] == JSMember.name_]
        bad = [b for b in bad if b[0] != JSMember.name_]
        if zombie:
            log("kafkajs: %d records handed to eachBatch after a commit past them was "
                "acknowledged (first %s): it keeps fetching while it cannot reach a "
                "coordinator, after the group removed it (see js/group_member.js)"
                % (len(zombie), zombie[:3]))
        check(not bad, "records delivered after a commit past them was acknowledged "
              "(member, partition, offset, committed): %s" % bad[:5])
        missing = [(p, o) for p in range(PARTS) for o in range(per[p]) if (p, o) not in seen]
        check(not missing, "%d records never delivered, first %s" % (len(missing), missing[:3]))
        by = {n: len([g for g in j.got if g[1] == n]) for n in names}
        log("deliveries %s; %d redelivered (%d of them to kafkajs after a commit past them, "
            "the others from uncommitted offsets); %d commits acknowledged, %d failed"
            % (by, dups, len(zombie), len(j.acked), len(j.failed)))
        check(all(by[n] > 0 for n in names), "a member read nothing: %s" % by)
        for n in names:
            r = recover[n]
            log("%s: first commit acknowledged after a coordinator kill, over %d kills: "
                "p50 %.1f s, p99 %.1f s, max %.1f s (%s)"
                % (n, len(r), percentile(r, 50), percentile(r, 99), max(r),
                   " ".join("%.1f" % x for x in r)))
    log("run time %.1f s" % (time.monotonic() - t_start))


if __name__ == "__main__":
    run(main, failures=(TestFailure,))
