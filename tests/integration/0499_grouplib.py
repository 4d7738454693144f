# SPDX-License-Identifier: Apache-2.0
"""Consumer group scenarios shared by the 04xx tests (not a test itself).

A member is a separate process (so it can be SIGKILLed) running one
client's group consumer on a topic. It speaks JSON lines on stdout:

    {"ev": "assigned", "parts": [0, 3]}     its whole assignment after each change
    {"ev": "rec", "p": 0, "o": 17, "v": "..."}  a record, after it was processed
    {"ev": "commit", "p": 0, "o": 18}       offsets committed (next to read)
    {"ev": "bye"}                           it left the group (close) and exits

and reads "leave" on stdin (leave gracefully). Members commit after
processing each batch they get, synchronously.

scenario() drives three members on a 6-partition topic (two partitions
each), adds a fourth, makes one leave and SIGKILLs another (dropped after
its session timeout), producing records all along; then every record must
have been consumed at least once, and a record consumed twice only from
the killed member's uncommitted tail.

Members of the three clients: "ck" (python3-confluent-kafka, librdkafka
2.0.2; assignor via env TRIB_ASSIGNOR), "kp" (kafka-python) and "kjs"
(kafkajs, a node script written next to the test's temp dir).
"""
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, Skip, log  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
SESSION_MS = 3000
# Group settings that keep the suite quick: short sessions are allowed, and a
# new group's first generation waits only 200 ms for more members.
CONFIG = """groups:
  group.min.session.timeout.ms: 1000
  group.initial.rebalance.delay.ms: 200
"""


def config_args():
    """-c with the group settings above, in a temp file removed when the test exits."""
    import atexit
    fd, path = tempfile.mkstemp(prefix="trib-groups.", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(CONFIG)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return ["-c", path]


# ---- members -------------------------------------------------------------------------

def out(ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def stdin_watcher():
    """Flags: leave ("leave" on stdin, or stdin closed) and nocommit ("nocommit")."""
    leave, nocommit = threading.Event(), threading.Event()

    def run():
        for line in sys.stdin:
            if line.strip() == "leave":
                break
            if line.strip() == "nocommit":
                nocommit.set()
        leave.set()
    threading.Thread(target=run, daemon=True).start()
    return leave, nocommit


def member_ck(bootstrap, topic, group):
    from confluent_kafka import Consumer, TopicPartition
    assignor = os.environ.get("TRIB_ASSIGNOR", "range,roundrobin")
    cooperative = assignor == "cooperative-sticky"
    owned = set()
    conf = {
        "bootstrap.servers": bootstrap, "group.id": group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 300,
        "max.poll.interval.ms": 10000, "partition.assignment.strategy": assignor,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    if os.environ.get("TRIB_INSTANCE_ID"):
        conf["group.instance.id"] = os.environ["TRIB_INSTANCE_ID"]
    c = Consumer(conf)

    def on_assign(consumer, parts):
        if cooperative:
            consumer.incremental_assign(parts)
            owned.update(p.partition for p in parts)
        else:
            owned.clear()
            owned.update(p.partition for p in parts)
        out({"ev": "assigned", "parts": sorted(owned)})

    def on_revoke(consumer, parts):
        if cooperative:
            consumer.incremental_unassign(parts)
            owned.difference_update(p.partition for p in parts)
        else:
            owned.clear()
        out({"ev": "assigned", "parts": sorted(owned)})

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    leave, nocommit = stdin_watcher()
    while not leave.is_set():
        msgs = c.consume(num_messages=100, timeout=0.2)
        done = {}
        for m in msgs:
            if m.error():
                continue
            out({"ev": "rec", "p": m.partition(), "o": m.offset(), "v": m.value().decode()})
            done[m.partition()] = m.offset() + 1
        if done and not nocommit.is_set():
            tps = [TopicPartition(topic, p, o) for p, o in done.items()]
            try:
                res = c.commit(offsets=tps, asynchronous=False)
                for tp in res:
                    if tp.error is None:
                        out({"ev": "commit", "p": tp.partition, "o": tp.offset})
            except Exception as e:  # a rebalance under way: the next owner re-reads
                out({"ev": "commit-failed", "err": str(e)})
    c.close()
    out({"ev": "bye"})


def member_kp(bootstrap, topic, group):
    from kafka import KafkaConsumer, TopicPartition, OffsetAndMetadata
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=SESSION_MS, heartbeat_interval_ms=300,
                      max_poll_interval_ms=10000, metadata_max_age_ms=1000,
                      api_version_auto_timeout_ms=10000)

    class L(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            out({"ev": "assigned", "parts": []})

        def on_partitions_assigned(self, assigned):
            out({"ev": "assigned", "parts": sorted(tp.partition for tp in assigned)})

    c.subscribe([topic], listener=L())
    leave, nocommit = stdin_watcher()
    while not leave.is_set():
        batches = c.poll(timeout_ms=200, max_records=100)
        done = {}
        for tp, msgs in batches.items():
            for m in msgs:
                out({"ev": "rec", "p": tp.partition, "o": m.offset, "v": m.value.decode()})
                done[tp.partition] = m.offset + 1
        if done and not nocommit.is_set():
            try:
                c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "")
                          for p, o in done.items()})
                for p, o in done.items():
                    out({"ev": "commit", "p": p, "o": o})
            except Exception as e:
                out({"ev": "commit-failed", "err": str(e)})
    c.close()
    out({"ev": "bye"})


KJS_MEMBER = r"""
const { Kafka, logLevel } = require('kafkajs');
const [bootstrap, topic, group] = process.argv.slice(2);
const out = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
const kafka = new Kafka({ clientId: 'kjs-member', brokers: [bootstrap], logLevel: logLevel.NOTHING,
                          retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } });
const consumer = kafka.consumer({ groupId: group, sessionTimeout: %SESSION%, heartbeatInterval: 300,
                                  rebalanceTimeout: 10000, metadataMaxAge: 1000,
                                  maxWaitTimeInMs: 250 });
let leaving = false;
let nocommit = false;
async function main() {
  await consumer.connect();
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
    out({ ev: 'assigned', parts });
  });
  consumer.on(consumer.events.REBALANCING, () => out({ ev: 'assigned', parts: [] }));
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
      let next = null;
      for (const m of batch.messages) {
        if (!isRunning() || isStale()) break;
        out({ ev: 'rec', p: batch.partition, o: Number(m.offset), v: m.value.toString() });
        next = Number(m.offset) + 1;
      }
      if (next !== null && !nocommit) {
        try {
          await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(next) }]);
          out({ ev: 'commit', p: batch.partition, o: next });
        } catch (e) {
          out({ ev: 'commit-failed', err: String(e) });
        }
      }
      await heartbeat();
    },
  });
}
process.stdin.on('data', async (d) => {
  if (String(d).includes('nocommit')) nocommit = true;
  if (leaving || !String(d).includes('leave')) return;
  leaving = true;
  await consumer.disconnect();
  out({ ev: 'bye' });
  process.exit(0);
});
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
"""


def kjs_dir():
    return os.path.join(HERE, "js")


def kjs_available():
    import shutil
    if not shutil.which("node"):
        return False
    d = kjs_dir()
    if not os.path.isdir(os.path.join(d, "node_modules", "kafkajs")):
        if not shutil.which("npm"):
            return False
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=d,
                           capture_output=True, timeout=300)
        if r.returncode != 0:
            return False
    return True


def member_cmd(kind, tmp, bootstrap, topic, group):
    if kind == "kjs":
        path = os.path.join(tmp, "kjs-member.js")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(KJS_MEMBER.replace("%SESSION%", str(SESSION_MS)))
        return ["node", path, bootstrap, topic, group], dict(
            os.environ, NODE_PATH=os.path.join(kjs_dir(), "node_modules"))
    return [PY, os.path.abspath(__file__), "member", kind, bootstrap, topic, group], None


class Member:
    def __init__(self, name, kind, tmp, bootstrap, topic, group, env_extra=None):
        self.name = name
        cmd, env = member_cmd(kind, tmp, bootstrap, topic, group)
        env = dict(env or os.environ)
        env.update(env_extra or {})
        self.errf = open(os.path.join(tmp, "member-%s.err" % name), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errf, env=env)
        self.events = queue.Queue()
        self.parts = []
        self.assigned_history = []  # every assignment reported, in order
        self.records = []   # (p, o, v)
        self.commits = {}   # p -> last committed offset reported
        self.alive = True
        self.bye = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self.events.put(ev)

    def pump(self):
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return
            e = ev.get("ev")
            if e == "assigned":
                self.parts = ev["parts"]
                self.assigned_history.append(ev["parts"])
            elif e == "rec":
                self.records.append((ev["p"], ev["o"], ev["v"]))
            elif e == "commit":
                self.commits[ev["p"]] = max(self.commits.get(ev["p"], -1), ev["o"])
            elif e == "bye":
                self.bye = True

    def stop_committing(self):
        self.proc.stdin.write(b"nocommit\n")
        self.proc.stdin.flush()

    def leave(self):
        self.proc.stdin.write(b"leave\n")
        self.proc.stdin.flush()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.alive = False
        self.parts = []

    def finish(self, timeout=30):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("member %s did not exit after leaving" % self.name)
        self.thread.join(5)
        self.pump()
        self.alive = False
        self.errf.close()

    def stderr_tail(self):
        try:
            with open(self.errf.name, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""


def wait_for(cond, what, timeout, members):
    deadline = time.monotonic() + timeout
    while True:
        for m in members:
            m.pump()
            if m.alive and m.proc.poll() is not None and not m.bye:
                raise TestFailure("member %s died (status %s): %s"
                                  % (m.name, m.proc.returncode, m.stderr_tail()))
        if cond():
            return
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %gs waiting for %s; assignments %s"
                              % (timeout, what, {m.name: m.parts for m in members if m.alive}))
        time.sleep(0.05)


def balanced(members, sizes, npart=6):
    """Live members' assignments are disjoint, cover every partition, with these sizes."""
    live = [m for m in members if m.alive]
    if len(live) != len(sizes):
        return False
    got = sorted(len(m.parts) for m in live)
    allp = [p for m in live for p in m.parts]
    return got == sorted(sizes) and sorted(allp) == list(range(npart))


# ---- producing and checking -------------------------------------------------------------

def create_topic(bootstrap, topic, partitions=6):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap, topic, start, n, npart=6):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % npart)
    if p.flush(30) != 0:
        raise TestFailure("produce: records left unsent")
    return ["v%d" % i for i in range(start, start + n)]


def check_consumed(members, produced, killed):
    seen = {}
    for m in members:
        for p, o, v in m.records:
            seen.setdefault((p, o), []).append((m, v))
    values = {v for lst in seen.values() for _, v in lst}
    missing = [v for v in produced if v not in values]
    if missing:
        raise TestFailure("%d of %d produced records were never consumed, e.g. %s"
                          % (len(missing), len(produced), missing[:5]))
    dups = 0
    tail = sum(1 for p, o, _ in killed.records if o >= killed.commits.get(p, -1))
    for (p, o), lst in seen.items():
        if len(lst) < 2:
            continue
        dups += len(lst) - 1
        first = lst[0][0]
        # Only the killed member's tail may come again: records at or past its last commit.
        if first is not killed or o < killed.commits.get(p, -1):
            raise TestFailure("partition %d offset %d consumed %d times (first by %s, "
                              "whose last commit there was %s): re-delivery outside the "
                              "uncommitted tail" % (p, o, len(lst), first.name,
                                                    first.commits.get(p)))
    if tail and not dups:
        raise TestFailure("the killed member's %d uncommitted records were not re-delivered"
                          % tail)
    log("%d records produced, all consumed; %d re-deliveries, all from the killed member's "
        "uncommitted tail of %d records" % (len(produced), dups, tail))


def scenario(c, kind, group="g-scenario", topic="g-topic", env_extra=None):
    """The acceptance scenario; returns the members (all gone at the end)."""
    if kind == "kjs" and not kjs_available():
        raise Skip("node/kafkajs not available")
    create_topic(c.bootstrap, topic)
    produced = produce(c.bootstrap, topic, 0, 300)
    members = []

    def add(name):
        m = Member(name, kind, c.tmp, c.bootstrap, topic, group, env_extra)
        members.append(m)
        return m

    t0 = time.monotonic()
    for i in range(3):
        add("m%d" % (i + 1))
    wait_for(lambda: balanced(members, [2, 2, 2]), "3 members with 2 partitions each", 60,
             members)
    log("%s: 3 members, 2 partitions each (%.1fs)" % (kind, time.monotonic() - t0))
    produced += produce(c.bootstrap, topic, 300, 300)

    add("m4")
    wait_for(lambda: balanced(members, [1, 1, 2, 2]), "4 members covering 6 partitions", 60,
             members)
    log("%s: a 4th member joined: %s" % (kind, {m.name: m.parts for m in members}))
    produced += produce(c.bootstrap, topic, 600, 300)

    members[0].leave()
    members[0].finish()
    if not members[0].bye:
        raise TestFailure("m1 did not leave cleanly")
    wait_for(lambda: balanced(members, [2, 2, 2]), "3 members after m1 left", 60, members)
    log("%s: m1 left: %s" % (kind, {m.name: m.parts for m in members if m.alive}))
    produced += produce(c.bootstrap, topic, 900, 300)

    # m2 stops committing and reads on: that uncommitted tail must come again, nothing else.
    total = len(produced)
    wait_for(lambda: len({(p, o) for m in members for p, o, _ in m.records}) >= total,
             "every record consumed before the kill", 60, members)
    killed = members[1]
    killed.stop_committing()
    time.sleep(0.3)  # the member's stdin thread sets the flag; nothing to poll for
    killed.pump()
    mark = len(killed.records)
    produced += produce(c.bootstrap, topic, 1200, 300)
    wait_for(lambda: len(killed.records) >= mark + 20, "m2 reading uncommitted records", 60,
             members)
    k0 = time.monotonic()
    killed.kill()
    killed.pump()
    produced += produce(c.bootstrap, topic, 1500, 300)
    wait_for(lambda: balanced(members, [3, 3]), "2 members after m2 was SIGKILLed", 60, members)
    log("%s: m2 SIGKILLed, dropped and reassigned after %.1fs: %s"
        % (kind, time.monotonic() - k0, {m.name: m.parts for m in members if m.alive}))
    total = len(produced)
    wait_for(lambda: len({v for m in members for _, _, v in m.records}) >= total,
             "every record consumed", 60, members)
    for m in members:
        if m.alive:
            m.leave()
    for m in members:
        if m.alive:
            m.finish()
    check_consumed(members, produced, killed)
    log("%s: scenario done in %.1fs" % (kind, time.monotonic() - t0))
    return members


def committed(bootstrap, group, topic, npart=6):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(npart)], timeout=20)
        return {tp.partition: tp.offset for tp in res}
    finally:
        c.close()


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "member":
        {"ck": member_ck, "kp": member_kp}[sys.argv[2]](*sys.argv[3:6])
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
