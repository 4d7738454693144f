# SPDX-License-Identifier: Apache-2.0
"""An agent ships to a three-collector cluster through a leader's SIGKILL
and another leader's controlled shutdown: every line once, in order.

One ZooKeeper and three collectors (session timeout 6 s). Topic
`agent.cl`: 3 partitions, replication factor 3, min.insync.replicas 2.
The agent's `output.brokers` lists all three collectors (a YAML list); it
tails two files that are appended to all along (key "{source}", so each
file's lines go to one partition) and takes syslog over TCP from util-linux
`logger` (through its disk buffer). During the run:
  1. the leader of the first file's partition is SIGKILLed; once another
     broker leads that partition it comes back on its port and rejoins
     every ISR;
  2. the partition's new leader gets SIGTERM (controlled shutdown: its
     leaderships move first), and comes back the same way.
Then the writers stop; once the agent's checkpoints are at both files'
ends and its disk buffer is empty, it is stopped and the topic is read.
The agent promises exactly once per line here (acks=all with
librdkafka's idempotent producer, which the collectors' replicated
producer state deduplicates across leader changes; no agent restart):
every line of each file is in the topic once, in file order, and every
syslog message once. Every wait is bounded; every process stops however
the test ends.
"""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, states, wait_for  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")

SESSION_S = 6
TOPIC = "agent.cl"
PARTS = 3
LINES_PER_TICK = 300  # per file, every 0.1 s
SYSLOG_BATCH = 100    # per logger run, every 0.5 s


class Writers:
    """Two files appended to and syslog batches sent until stop()."""

    def __init__(self, files, syslog_port, tmp):
        self.files = files
        self.port = syslog_port
        self.tmp = tmp
        self.counts = {f: 0 for f in files}
        self.sent = 0
        self.error = None
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.tail_writer),
                        threading.Thread(target=self.syslog_writer)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(60)
        if self.error:
            raise TestFailure("writer: %s" % self.error)

    def tail_writer(self):
        try:
            fds = {f: open(f, "a") for f in self.files}
            while not self.done.is_set():
                for f, fd in fds.items():
                    n = self.counts[f]
                    fd.write("".join("file=%s seq=%d %s\n" % (os.path.basename(f), i, "x" * 80)
                                     for i in range(n, n + LINES_PER_TICK)))
                    fd.flush()
                    self.counts[f] = n + LINES_PER_TICK
                time.sleep(0.1)
            for fd in fds.values():
                fd.close()
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.error = repr(e)

    def syslog_writer(self):
        try:
            batch = os.path.join(self.tmp, "syslog-batch")
            while not self.done.is_set():
                with open(batch, "w") as f:
                    f.write("".join("syslog seq=%d\n" % i
                                    for i in range(self.sent, self.sent + SYSLOG_BATCH)))
                r = subprocess.run(["logger", "-T", "--octet-count", "-n", "127.0.0.1", "-P",
                                    str(self.port), "-t", "cltest", "-f", batch],
                                   capture_output=True, timeout=30)
                if r.returncode != 0:
                    raise RuntimeError("logger: %s" % r.stderr.decode(errors="replace"))
                self.sent += SYSLOG_BATCH
                self.done.wait(0.5)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.error = repr(e)


def partition_of(key):
    """librdkafka's default partitioner (consistent_random) for a key: CRC32 % partitions."""
    return zlib.crc32(key.encode()) % PARTS


def wait_full_isr(zk, what):
    return wait_for("every ISR of %s back to 3 (%s)" % (TOPIC, what),
                    lambda: all(len(s["isr"]) == 3 and s["leader"] >= 0
                                for s in states(zk, TOPIC).values()), 90, 0.2)


def check_topic(vals, files, w):
    per = {os.path.basename(f): [] for f in files}
    syslog = []
    for v in vals:
        msg = v["message"]
        seq = int(msg.split("seq=")[1].split()[0])
        if msg.startswith("file="):
            per[msg.split()[0][5:]].append(seq)
        else:
            check("syslog seq=" in msg, "an unexpected event %r" % v)
            syslog.append(seq)
    for f in files:
        name = os.path.basename(f)
        got = per[name]
        n = w.counts[f]
        dups = len(got) - len(set(got))
        missing = set(range(n)) - set(got)
        log("%s: %d lines written, %d events, %d duplicates" % (name, n, len(got), dups))
        check(not missing, "%s: %d lines lost, first %d" % (name, len(missing),
                                                            min(missing) if missing else -1))
        check(dups == 0, "%s: %d duplicates (exactly once was expected)" % (name, dups))
        bad = [i for i in range(1, len(got)) if got[i] < got[i - 1]]
        check(not bad, "%s: out of order at event %d: %d after %d"
              % (name, bad[0], got[bad[0]], got[bad[0] - 1]) if bad else "")
    sdups = len(syslog) - len(set(syslog))
    smissing = set(range(w.sent)) - set(syslog)
    log("syslog: %d messages sent, %d events, %d duplicates" % (w.sent, len(syslog), sdups))
    check(not smissing, "syslog: %d messages lost, first %d"
          % (len(smissing), min(smissing) if smissing else -1))
    check(sdups == 0, "syslog: %d duplicates (exactly once was expected)" % sdups)


def main():
    from confluent_kafka.admin import NewTopic
    from zk_cluster import admin
    for tool in ("logger", "kcat"):
        if shutil.which(tool) is None:
            raise Skip("%s is not installed (scripts/test installs it)" % tool)
    if not os.access(agentlib.AGENT, os.X_OK):
        raise TestFailure("%s is not built" % agentlib.AGENT)
    t_start = time.monotonic()
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("server:\n  shutdown_timeout: 10s\n")
        cl.start()
        for b in cl.brokers.values():
            b.extra = ["--listen", b.bootstrap]  # a restart comes back on the same port
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        boot = cl.bootstrap()
        adm = admin(boot)
        adm.create_topics([NewTopic(TOPIC, PARTS, 3, config={"min.insync.replicas": "2"})],
                          request_timeout=60)[TOPIC].result(timeout=90)
        zk = cl.zk.reader()
        tmp = tempfile.mkdtemp(prefix="agent.", dir=cl.root)
        logs = os.path.join(tmp, "logs")
        os.makedirs(logs)
        files = [os.path.join(logs, "a.log"), os.path.join(logs, "b.log")]
        for f in files:
            open(f, "w").close()
        port = agentlib.free_port()
        a = agentlib.Agent(tmp, "", """
  - name: files
    inputs:
      - {type: tail, paths: ["%s/*.log"]}
    topic: %s
    key: "{source}"
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
    key: syslog
""" % (logs, TOPIC, port, TOPIC), output_extra="  options: {reconnect.backoff.max.ms: 500}\n")
        # output.brokers as a YAML list of all three collectors
        a.bootstrap = ", ".join(b.bootstrap for b in cl.brokers.values())
        a.write_config()
        w = Writers(files, port, tmp)
        try:
            wait_full_isr(zk, "created")
            log("controller %d; %s %s; agent brokers [%s]" % (ctl, TOPIC, states(zk, TOPIC),
                                                              a.bootstrap))
            a.start()
            agentlib.wait_listening(a)
            w.start()
            p = partition_of(files[0])
            wait_for("events acknowledged", lambda: a.metrics().get(
                "tributary_agent_events_acked_total", 0) > 2000, 60)

            # 1. SIGKILL the leader of a.log's partition.
            victim = states(zk, TOPIC)[p]["leader"]
            cl.broker(victim).kill("KILL")
            log("partition %d: leader %d SIGKILLed" % (p, victim))
            st = wait_for("another leader of partition %d" % p,
                          lambda: (lambda s: s if s["leader"] not in (-1, victim) else None)(
                              states(zk, TOPIC)[p]), SESSION_S * 3 + 30, 0.2)
            log("partition %d: leader %d, isr %s" % (p, st["leader"], st["isr"]))
            acked = a.metrics().get("tributary_agent_events_acked_total", 0)
            wait_for("deliveries through the new leader", lambda: a.metrics().get(
                "tributary_agent_events_acked_total", 0) > acked + 5000, 60)
            cl.broker(victim).start()
            wait_full_isr(zk, "broker %d back" % victim)

            # 2. Controlled shutdown of the partition's leader now.
            second = states(zk, TOPIC)[p]["leader"]
            check(second != victim, "the restarted broker leads partition %d again" % p)
            cl.broker(second).kill("TERM")
            log("partition %d: leader %d stopped by SIGTERM; now %s"
                % (p, second, states(zk, TOPIC)[p]))
            acked = a.metrics().get("tributary_agent_events_acked_total", 0)
            wait_for("deliveries after the controlled shutdown", lambda: a.metrics().get(
                "tributary_agent_events_acked_total", 0) > acked + 5000, 60)
            cl.broker(second).start()
            wait_full_isr(zk, "broker %d back" % second)
            time.sleep(1)
            w.stop()

            sizes = {f: os.path.getsize(f) for f in files}
            wait_for("the checkpoints at both files' ends", lambda: all(
                any(r["path"] == f and r["offset"] == sizes[f] for r in a.checkpoints())
                for f in files), 120, 0.2)
            wait_for("every syslog message accepted and acknowledged", lambda: (
                lambda m: m.get("tributary_agent_syslog_received_total", 0) >= w.sent
                and m.get("tributary_agent_buffer_events", -1) == 0)(a.metrics()), 120, 0.2)
            m = a.metrics()
            log("agent: %d events acknowledged, %d delivery errors, %d retries"
                % (m.get("tributary_agent_events_acked_total", 0),
                   m.get("tributary_agent_delivery_errors_total", 0),
                   m.get("tributary_agent_delivery_retries_total", 0)))
            a.stop("TERM")
            check_topic(agentlib.consume(cl.bootstrap(), TOPIC), files, w)
            a.check_logs()
        except BaseException:
            w.done.set()
            a.dump()
            raise
        finally:
            w.done.set()
            a.kill_if_running()
            zk.close()
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
