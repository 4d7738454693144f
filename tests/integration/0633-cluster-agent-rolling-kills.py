# SPDX-License-Identifier: Apache-2.0
"""An agent tails 200,000 lines into a three-collector cluster while every
collector is SIGKILLed in turn (each back, and in every ISR, before the
next kill): every line is delivered, in file order.

One ZooKeeper and three collectors (session timeout 6 s). Topic
`agent.roll`: 3 partitions, replication factor 3, min.insync.replicas 2.
The agent's `output.brokers` lists the three; it tails two files (key
"{source}": each file's lines go to one partition). A writer appends
100,000 lines to each file (about 2,500 lines a second in all) while the
collectors 1, 2 and 3 are SIGKILLed one after the other: after each kill
the agent's acknowledged events must grow by 5,000 through the others,
then the collector starts again on its port and the test waits for
every ISR to be whole. Once the writer is done, the agent's checkpoints
must reach both files' ends; the agent stops and the topic is read:
  - every line of each file is there (at least once);
  - the first delivery of each line is in file order;
  - duplicates are counted and reported; the agent is not restarted, so
    its acknowledged tail never has to be sent again, and librdkafka's
    idempotent producer's retries are deduplicated by the collectors:
    none are expected (a duplicate fails the test).
Every wait is bounded; every process stops however the test ends.
"""
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, admin, check, states, wait_for  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")

SESSION_S = 6
TOPIC = "agent.roll"
PARTS = 3
LINES = 100_000      # per file
PER_TICK = 125       # per file, every 0.1 s


class Writer(threading.Thread):
    def __init__(self, files):
        super().__init__(daemon=True)
        self.files = files
        self.n = 0
        self.error = None
        self.abort = threading.Event()

    def run(self):
        try:
            fds = [open(f, "a") for f in self.files]
            while self.n < LINES and not self.abort.is_set():
                k = min(PER_TICK, LINES - self.n)
                for f, fd in zip(self.files, fds):
                    fd.write("".join("file=%s seq=%d %s\n" % (os.path.basename(f), i, "z" * 60)
                                     for i in range(self.n, self.n + k)))
                    fd.flush()
                self.n += k
                time.sleep(0.1)
            for fd in fds:
                fd.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)


def topic_states(cl):
    zk = cl.zk.reader()
    try:
        return states(zk, TOPIC)
    finally:
        zk.close()


def acked(a):
    return a.metrics().get("tributary_agent_events_acked_total", 0)


def main():
    from confluent_kafka.admin import NewTopic
    if shutil.which("kcat") is None:
        raise Skip("kcat is not installed (scripts/test installs it)")
    if not os.access(agentlib.AGENT, os.X_OK):
        raise TestFailure("%s is not built" % agentlib.AGENT)
    t_start = time.monotonic()
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        for b in cl.brokers.values():
            b.extra = ["--listen", b.bootstrap]  # a restart comes back on the same port
        cl.wait_controller([1, 2, 3])
        adm = admin(cl.bootstrap())
        adm.create_topics([NewTopic(TOPIC, PARTS, 3, config={"min.insync.replicas": "2"})],
                          request_timeout=60)[TOPIC].result(timeout=90)
        tmp = tempfile.mkdtemp(prefix="agent.", dir=cl.root)
        logs = os.path.join(tmp, "logs")
        os.makedirs(logs)
        files = [os.path.join(logs, "a.log"), os.path.join(logs, "b.log")]
        for f in files:
            open(f, "w").close()
        a = agentlib.Agent(tmp, ", ".join(b.bootstrap for b in cl.brokers.values()), """
  - name: files
    inputs:
      - {type: tail, paths: ["%s/*.log"]}
    topic: %s
    key: "{source}"
""" % (logs, TOPIC), output_extra="  options: {reconnect.backoff.max.ms: 500}\n")
        w = Writer(files)
        try:
            wait_for("every ISR of %s whole" % TOPIC, lambda: all(
                len(s["isr"]) == 3 and s["leader"] >= 0
                for s in topic_states(cl).values()), 90, 0.2)
            a.start()
            w.start()
            wait_for("events acknowledged", lambda: acked(a) > 2000, 60)
            for victim in (1, 2, 3):
                cl.broker(victim).kill("KILL")
                n0 = acked(a)
                t0 = time.monotonic()
                wait_for("5,000 more events acknowledged with broker %d down" % victim,
                         lambda: acked(a) > n0 + 5000, 90, 0.2)
                log("broker %d SIGKILLed at line %d; 5,000 more events acknowledged in %.1f s"
                    % (victim, w.n, time.monotonic() - t0))
                cl.broker(victim).start()
                wait_for("every ISR of %s whole again" % TOPIC, lambda: all(
                    len(s["isr"]) == 3 and s["leader"] >= 0
                    for s in topic_states(cl).values()), 120, 0.2)
            w.join(300)
            check(w.error is None and w.n == LINES, "writer: %s, %d lines" % (w.error, w.n))
            sizes = {f: os.path.getsize(f) for f in files}
            wait_for("the checkpoints at both files' ends", lambda: all(
                any(r["path"] == f and r["offset"] == sizes[f] for r in a.checkpoints())
                for f in files), 180, 0.2)
            m = a.metrics()
            log("agent: %d events acknowledged, %d delivery errors, %d retries"
                % (m.get("tributary_agent_events_acked_total", 0),
                   m.get("tributary_agent_delivery_errors_total", 0),
                   m.get("tributary_agent_delivery_retries_total", 0)))
            a.stop("TERM")
            vals = agentlib.consume(cl.bootstrap(), TOPIC)
            per = {os.path.basename(f): [] for f in files}
            for v in vals:
                msg = v["message"]
                per[msg.split()[0][5:]].append(int(msg.split("seq=")[1].split()[0]))
            for name, got in per.items():
                dups = len(got) - len(set(got))
                missing = set(range(LINES)) - set(got)
                seen, late, hi = set(), 0, -1
                for s in got:
                    if s < hi and s not in seen:
                        late += 1
                    seen.add(s)
                    hi = max(hi, s)
                log("%s: %d lines written, %d events, %d duplicates, %d first seen out of "
                    "order" % (name, LINES, len(got), dups, late))
                check(not missing, "%s: %d lines lost, first %d"
                      % (name, len(missing), min(missing) if missing else -1))
                check(late == 0, "%s: %d lines first seen out of file order" % (name, late))
                check(dups == 0, "%s: %d duplicates" % (name, dups))
            a.check_logs()
        except BaseException:
            w.abort.set()
            a.dump()
            raise
        finally:
            w.abort.set()
            a.kill_if_running()
    log("run time %.1f s" % (time.monotonic() - t_start))


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
