# SPDX-License-Identifier: Apache-2.0
"""An agent rides out an outage of its whole three-collector cluster:
files wait at their checkpoints, syslog waits in the disk buffer, and
every line and message is in the topic once the cluster is back.

One ZooKeeper and three collectors (session timeout 6 s). Topic
`agent.outage`: 3 partitions, replication factor 3, min.insync.replicas
2. The agent's `output.brokers` is one comma-separated string naming the
three. The agent never gives up on a delivery (message.timeout.ms is 0,
and a configuration that sets another value is refused at its position:
checked first); its requests and connections time out after 2 s and 3 s
(`request.timeout.ms`, `socket.timeout.ms`) and are retried. It tails a
file appended to all along and takes syslog over TCP (RFC 6587 octet
counting; these go through the disk buffer).

All three collectors are stopped (SIGTERM) for 20 s (--outage SECONDS;
the chaos label runs 60 s), several times those timeouts, while lines
and messages keep coming. Meanwhile, as documented:
/health answers 503 "degraded", the file's checkpoint stays where it
was (it moves only past acknowledged lines) and below the file's size,
and every syslog message the agent accepted is in its disk buffer. Then
the collectors start again on their ports; once the checkpoint is at the
file's end and the buffer is empty the agent stops and the topic is
read: no line and no message is missing, and the file's lines are in
file order. The agent promises at least once; with the idempotent
producer's retries deduplicated by the collectors (their producer state
survives a restart) duplicates are counted and reported, and expected to
be 0.
Every wait is bounded; every process stops however the test ends.
"""
import argparse
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, admin, check, states, wait_for  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")

SESSION_S = 6
TOPIC = "agent.outage"
OUTAGE_S = 20.0
TIMEOUT_MS = 3000  # socket.timeout.ms; request.timeout.ms is 2000


class Agent(agentlib.Agent):
    """output.brokers written as one comma-separated string."""

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write("agent:\n  id: %s\n  state_dir: %s\n  metrics_file: %s\n"
                    "  checkpoint_interval: 100ms\n%s"
                    % (self.name, self.state, self.metrics_file, self.agent_extra))
            f.write('output:\n  brokers: "%s"\n%s' % (self.bootstrap, self.output_extra))
            f.write("pipelines:\n%s" % self.pipelines)


class Writers:
    def __init__(self, path, syslog_port):
        self.path = path
        self.port = syslog_port
        self.lines = 0
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
            with open(self.path, "a") as f:
                while not self.done.is_set():
                    n = self.lines
                    f.write("".join("file seq=%d %s\n" % (i, "y" * 100)
                                    for i in range(n, n + 100)))
                    f.flush()
                    self.lines = n + 100
                    time.sleep(0.1)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.error = repr(e)

    def syslog_writer(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            while not self.done.is_set():
                out = []
                for i in range(self.sent, self.sent + 50):
                    msg = ("<134>1 2026-12-07T10:00:00.000Z web-1 app %d - - syslog seq=%d"
                           % (i, i)).encode()
                    out.append(b"%d %s" % (len(msg), msg))
                s.sendall(b"".join(out))
                self.sent += 50
                time.sleep(0.1)
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.error = repr(e)


def health(mport):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % mport, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    global OUTAGE_S
    ap = argparse.ArgumentParser()
    ap.add_argument("--outage", type=float, default=OUTAGE_S)
    OUTAGE_S = ap.parse_args().outage
    from confluent_kafka.admin import NewTopic
    if shutil.which("kcat") is None:
        raise Skip("kcat is not installed (scripts/test installs it)")
    if not os.access(agentlib.AGENT, os.X_OK):
        raise TestFailure("%s is not built" % agentlib.AGENT)
    t_start = time.monotonic()
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("server:\n  shutdown_timeout: 5s\n")
        cl.start()
        for b in cl.brokers.values():
            b.extra = ["--listen", b.bootstrap]  # a restart comes back on the same port
        cl.wait_controller([1, 2, 3])
        adm = admin(cl.bootstrap())
        adm.create_topics([NewTopic(TOPIC, 3, 3, config={"min.insync.replicas": "2"})],
                          request_timeout=60)[TOPIC].result(timeout=90)
        zk = cl.zk.reader()
        tmp = tempfile.mkdtemp(prefix="agent.", dir=cl.root)
        path = os.path.join(tmp, "app.log")
        open(path, "w").close()
        port = agentlib.free_port()
        mport = agentlib.free_port()
        a = Agent(tmp, ",".join(b.bootstrap for b in cl.brokers.values()), """
  - name: files
    inputs:
      - {type: tail, paths: ["%s"]}
    topic: %s
    key: "{source}"
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
    key: syslog
""" % (path, TOPIC, port, TOPIC), agent_extra="  metrics: 127.0.0.1:%d\n" % mport,
            output_extra="  options: {reconnect.backoff.max.ms: 500, socket.timeout.ms: %d,"
                         " request.timeout.ms: 2000}\n" % TIMEOUT_MS)
        # A delivery timeout is refused, where it is written.
        with open(a.conf) as f:
            text = f.read().replace("request.timeout.ms: 2000}",
                                    "request.timeout.ms: 2000, message.timeout.ms: 60000}")
        probe = os.path.join(tmp, "timeout.yaml")
        with open(probe, "w") as f:
            f.write(text)
        line = [i for i, l in enumerate(text.splitlines(), 1) if "message.timeout" in l][0]
        r = subprocess.run([agentlib.AGENT, "--check-config", "--config", probe],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and ("timeout.yaml:%d:" % line) in r.stderr
              and "message.timeout.ms must be 0" in r.stderr,
              "message.timeout.ms: 60000 was not refused at line %d: status %d, %r"
              % (line, r.returncode, r.stderr))
        w = Writers(path, port)
        try:
            wait_for("every partition of %s led" % TOPIC, lambda: all(
                s["leader"] >= 0 for s in states(zk, TOPIC).values()), 60, 0.2)
            a.start()
            agentlib.wait_listening(a)
            w.start()
            wait_for("events acknowledged", lambda: a.metrics().get(
                "tributary_agent_events_acked_total", 0) > 2000, 60)

            # The whole cluster down.
            for b in cl.brokers.values():
                b.kill("TERM")
            t0 = time.monotonic()
            log("all three collectors stopped")
            time.sleep(TIMEOUT_MS / 1000.0 + 2)
            ck1 = [r["offset"] for r in a.checkpoints() if r["path"] == path]
            received1 = a.metrics().get("tributary_agent_syslog_received_total", 0)
            while time.monotonic() - t0 < OUTAGE_S:
                if not a.alive():
                    raise TestFailure("the agent died during the outage")
                time.sleep(0.25)
            code, body = health(mport)
            m = a.metrics()
            ck2 = [r["offset"] for r in a.checkpoints() if r["path"] == path]
            size = os.path.getsize(path)
            log("outage of %.0f s: health %d %r; checkpoint %s -> %s of %d bytes written; "
                "syslog %d accepted, %d in the disk buffer (%d bytes); %d delivery retries"
                % (time.monotonic() - t0, code, body.strip(), ck1, ck2, size,
                   m.get("tributary_agent_syslog_received_total", 0),
                   m.get("tributary_agent_buffer_events", 0),
                   m.get("tributary_agent_buffer_bytes", 0),
                   m.get("tributary_agent_delivery_retries_total", 0)))
            check(code == 503 and "degraded" in body, "/health said %d %r during the outage"
                  % (code, body))
            check(len(ck2) == 1 and ck1 == ck2 and ck2[0] < size,
                  "the file's checkpoint moved during the outage or reached the end of the "
                  "file: %s -> %s, %d bytes written" % (ck1, ck2, size))
            check(m.get("tributary_agent_syslog_received_total", 0) > received1,
                  "no syslog message accepted during the outage")
            check(m.get("tributary_agent_buffer_events", 0) >=
                  m.get("tributary_agent_syslog_received_total", 0) - received1,
                  "the disk buffer holds fewer events than were accepted during the outage")

            # The cluster back.
            for b in cl.brokers.values():
                b.spawn()
            for b in cl.brokers.values():
                b.wait_ready()
            log("the cluster is back after %.0f s" % (time.monotonic() - t0))
            time.sleep(2)
            w.stop()
            size = os.path.getsize(path)
            wait_for("the checkpoint at the file's end", lambda: any(
                r["path"] == path and r["offset"] == size for r in a.checkpoints()), 120, 0.2)
            wait_for("every syslog message accepted and acknowledged", lambda: (
                lambda m: m.get("tributary_agent_syslog_received_total", 0) >= w.sent
                and m.get("tributary_agent_buffer_events", -1) == 0)(a.metrics()), 120, 0.2)
            wait_for("/health ok again", lambda: health(mport)[0] == 200, 30, 0.2)
            m = a.metrics()
            log("agent: %d events acknowledged, %d delivery errors, %d retries"
                % (m.get("tributary_agent_events_acked_total", 0),
                   m.get("tributary_agent_delivery_errors_total", 0),
                   m.get("tributary_agent_delivery_retries_total", 0)))
            a.stop("TERM")

            vals = agentlib.consume(cl.bootstrap(), TOPIC)
            files, syslog = [], []
            for v in vals:
                seq = int(v["message"].split("seq=")[1].split()[0])
                (files if v["message"].startswith("file ") else syslog).append(seq)
            for name, got, n in (("file", files, w.lines), ("syslog", syslog, w.sent)):
                missing = set(range(n)) - set(got)
                # out of order: a line seen before a smaller one that had not been seen yet
                seen, late = set(), 0
                hi = -1
                for s in got:
                    if s < hi and s not in seen:
                        late += 1
                    seen.add(s)
                    hi = max(hi, s)
                log("%s: %d written, %d events, %d duplicates, %d first seen out of order"
                    % (name, n, len(got), len(got) - len(set(got)), late))
                check(not missing, "%s: %d lost, first %d"
                      % (name, len(missing), min(missing) if missing else -1))
                if name == "file":
                    check(late == 0, "file: %d lines first seen out of file order" % late)
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
