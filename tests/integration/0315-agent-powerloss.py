#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The agent's disk buffer and tail checkpoints after a simulated power loss.

Two agents run under tests/powerloss/libpowerloss.so, each watching a
tree in which it creates its own state_dir (the checkpoint file and
buffer/: segments, ledger), so that after a SIGKILL rollback.py can put
back exactly what the agent's fsyncs made durable: "full" takes syslog
over TCP and tails two files (one read_from: end, where a lost checkpoint
would skip lines), "syslog" only takes syslog (no checkpoint writes that
happen to sync its state_dir). The collector is another machine here and
keeps its data.

The guarantee (agent/buffer/buffer.h, README): a syslog event is appended
to the buffer with one write when it is accepted, and the buffer is
fdatasynced, with the ledger (the first unacknowledged id) written
atomically, every checkpoint_interval. The metrics_file is written in the
same timer callback right after that sync, so once it shows
tributary_agent_buffered_events_total >= B, the first B events this run
accepted are durable. A power loss may lose events accepted after the
last sync that the collector had not acknowledged, nothing else:

  1. every event covered by a completed sync (the first B of the run) and
     every event the collector had, arrives after the restart;
  2. events acknowledged before a completed sync that wrote the ledger
     past them are not sent again (the durable ledger never goes back
     past a completed sync): their count at the collector is unchanged;
  3. the agent restarts on the rolled-back buffer without manual action;
  4. tailed lines all arrive at least once: a rolled-back checkpoint
     means re-reading, never skipping.

Each round: tail lines and syslog events are delivered with the collector
up and settle (metrics file: buffer empty, so the ledger past them was
synced); the collector stops; more events are accepted and a sync covers
them (phase B); a last burst (phase C) is sent and the agent is SIGKILLed
at once; the state_dir is rolled back; the collector and the agent start
again and everything of 1. and 4. must arrive. How many phase C events
were lost is logged (it depends on where the kill fell relative to the
timer; with the buffer's fdatasync removed, phase B is lost too, which
fails the test).

  0315-agent-powerloss.py [--rounds N] [--seed S]   (default 3 rounds)
"""
import argparse
import collections
import importlib
import os
import random
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "powerloss"))
import rollback as powerloss  # noqa: E402
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
TAIL_TOPIC = "agent.powerloss.tail"
TAG = re.compile(r"pl=(\S+)")
ARGS = None


class PowerlossAgent(agentlib.Agent):
    """checkpoint_interval 1s: a window of accepted, unsynced events."""

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write("agent:\n  id: %s\n  state_dir: %s\n  metrics_file: %s\n"
                    "  checkpoint_interval: 1s\n  shutdown_timeout: 1s\n"
                    % (self.name, self.state, self.metrics_file))
            f.write("output:\n  brokers: [%s]\n" % self.bootstrap)
            f.write("buffer: {segment_size: 16KiB}\n")
            f.write("pipelines:\n%s" % self.pipelines)


def tags(bootstrap, topic):
    return collections.Counter(TAG.search(v["message"]).group(1)
                               for v in agentlib.consume(bootstrap, topic, timeout=60))


def send(port, names):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"".join(b"<14>Nov 26 10:00:00 web-1 app[1]: power loss test pl=%s\n"
                       % n.encode() for n in names))
    s.close()


BUFFERED = "tributary_agent_buffered_events_total"
UNACKED = "tributary_agent_buffer_events"


def synced(a, pred, what, timeout=60):
    """Waits until one metrics file (written right after each buffer sync)
    satisfies pred(values); returns the values."""
    got = {}

    def ok():
        got.clear()
        got.update(a.metrics())
        return BUFFERED in got and UNACKED in got and pred(got)
    agentlib.wait_for(ok, timeout, what)
    if got.get("tributary_agent_buffer_sync_errors_total", 0):
        raise TestFailure("the agent counted buffer sync errors: %s" % got)
    return got


def append_lines(path, path_end, names, prefix, n):
    """n lines to each tailed file (the second one is read_from: end, so a
    lost checkpoint would skip lines rather than re-read them)."""
    for p, kind in ((path, "b"), (path_end, "e")):
        with open(p, "a") as f:
            for i in range(n):
                names.append("%s-%s-%d" % (prefix, kind, i))
                f.write("tail line pl=%s\n" % names[-1])


class Subject:
    """One agent under the shim: its syslog port and topic, and what it was sent."""

    def __init__(self, c, name, tail_paths):
        self.name = name
        self.port = agentlib.free_port()
        self.topic = "agent.powerloss.%s" % name
        pipes = """
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
""" % (self.port, self.topic)
        if tail_paths:
            pipes += """  - name: app
    inputs:
      - {type: tail, paths: ["%s"]}
      - {type: tail, paths: ["%s"], read_from: end}
    topic: %s
""" % (tail_paths[0], tail_paths[1], TAIL_TOPIC)
        self.a = PowerlossAgent(c.tmp, c.bootstrap, pipes, name=name)
        # The agent creates state_dir itself, inside the watched root: the
        # directories it makes must be durable too.
        self.root = os.path.join(c.tmp, name + "-root")
        os.makedirs(self.root)
        self.a.state = os.path.join(self.root, "state")
        self.a.write_config()
        self.shadow = os.path.join(c.tmp, name + "-shadow")
        self.a.env = powerloss.shim_env(self.shadow, [self.root])
        self.lost_c = 0

    def start(self):
        self.a.start()
        agentlib.wait_listening(self.a)


def main(c):
    agentlib.require_kcat()
    rng = random.Random(ARGS.seed)
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "app.log")
    path_end = os.path.join(logs, "end.log")
    open(path, "w").close()
    open(path_end, "w").close()
    # "full" also tails two files (its checkpoint writes sync state_dir);
    # "syslog" has only the buffer.
    subjects = [Subject(c, "full", (path, path_end)), Subject(c, "syslog", None)]
    tail_lines = []
    with agentlib.guard(*[s.a for s in subjects]):
        for s in subjects:
            s.start()
        for rnd in range(ARGS.rounds):
            n_a, n_b, n_c = (rng.randint(100, 400) for _ in range(3))
            # Phase A: delivered with the collector up, settled (ledger synced past them).
            append_lines(path, path_end, tail_lines, "%d-t" % rnd, rng.randint(100, 300))
            phase_a = ["%d-a-%d" % (rnd, i) for i in range(n_a)]
            for s in subjects:
                send(s.port, phase_a)
            for s in subjects:
                synced(s.a, lambda m: m[BUFFERED] >= n_a and m[UNACKED] == 0,
                       "%s, round %d: phase A acknowledged and the ledger synced past it"
                       % (s.name, rnd))
            agentlib.wait_for(lambda: set(tail_lines) <= set(tags(c.bootstrap, TAIL_TOPIC)),
                              60, "round %d: tail lines delivered" % rnd)
            for s in subjects:
                s.before = tags(c.bootstrap, s.topic)
                for n in phase_a:
                    if s.before[n] == 0:
                        raise TestFailure("%s, round %d: %s not at the collector"
                                          % (s.name, rnd, n))
            # Phase B: the collector is down; the events are accepted and synced.
            c.stop("TERM")
            append_lines(path, path_end, tail_lines, "%d-u" % rnd, rng.randint(50, 200))
            phase_b = ["%d-b-%d" % (rnd, i) for i in range(n_b)]
            for s in subjects:
                send(s.port, phase_b)
            for s in subjects:
                synced(s.a, lambda m: m[BUFFERED] >= n_a + n_b,
                       "%s, round %d: phase B synced" % (s.name, rnd))
            # Phase C: a burst, then the power goes.
            phase_c = ["%d-c-%d" % (rnd, i) for i in range(n_c)]
            for s in subjects:
                send(s.port, phase_c)
            for s in subjects:
                s.a.stop("KILL")
            for s in subjects:
                m = s.a.metrics()  # the last file written before the kill
                if m.get("tributary_agent_buffer_sync_errors_total", 0):
                    raise TestFailure("the agent counted buffer sync errors: %s" % m)
                n_synced = int(m[BUFFERED])
                s.must = set((phase_a + phase_b + phase_c)[:n_synced])
                summary = powerloss.rollback(s.shadow)
                log("%s, round %d: killed with %d events sent this run, %d synced; rolled "
                    "back: %s" % (s.name, rnd, n_a + n_b + n_c, n_synced, summary))
                os.unlink(s.a.metrics_file)
            c.start()
            for s in subjects:
                s.a.bootstrap = c.bootstrap
                s.a.write_config()
                s.start()

            def missing():
                out = []
                for s in subjects:
                    got = tags(c.bootstrap, s.topic)
                    out += ["%s:%s" % (s.name, n) for n in sorted(s.must - set(got))]
                tgot = tags(c.bootstrap, TAIL_TOPIC)
                out += ["tail:%s" % n for n in sorted(set(tail_lines) - set(tgot))]
                return out
            try:
                agentlib.wait_for(lambda: not missing(), 60, "round %d: every synced event "
                                  "and tail line after the power loss" % rnd, interval=0.5)
            except TestFailure:
                gone = missing()
                raise TestFailure("round %d: after the power loss %d synced events or tail "
                                  "lines are missing (of %s synced events, %d tail lines), "
                                  "e.g. %s" % (rnd, len(gone), [len(s.must) for s in subjects],
                                               len(tail_lines), gone[:6]))
            for s in subjects:
                # Whatever is resent is resent by the recovered buffer: let it drain.
                synced(s.a, lambda m: m[UNACKED] == 0,
                       "%s, round %d: the recovered buffer drained" % (s.name, rnd))
                after = tags(c.bootstrap, s.topic)
                resent = [n for n, k in s.before.items() if after[n] != k]
                if resent:
                    raise TestFailure("%s, round %d: %d events acknowledged before a completed "
                                      "sync were sent again after the power loss (e.g. %s)"
                                      % (s.name, rnd, len(resent), resent[:5]))
                lost = [n for n in phase_c if after[n] == 0]
                s.lost_c += len(lost)
                log("%s, round %d: all %d synced events arrived; %d of %d phase C events lost "
                    "(accepted after the last sync or not yet read when the power went)"
                    % (s.name, rnd, len(s.must), len(lost), n_c))
            tafter = tags(c.bootstrap, TAIL_TOPIC)
            log("round %d: all %d tail lines arrived (%d read again)"
                % (rnd, len(tail_lines), sum(k - 1 for k in tafter.values())))
        for s in subjects:
            s.a.stop("TERM")
    log("%d rounds: nothing synced was lost; unsynced events lost: %s"
        % (ARGS.rounds, ", ".join("%s %d" % (s.name, s.lost_c) for s in subjects)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=315)
    ARGS = ap.parse_args()
    run_test(main)
