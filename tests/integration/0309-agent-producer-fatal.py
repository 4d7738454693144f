# SPDX-License-Identifier: Apache-2.0
"""A fatal producer error mid-run (agents-and-sinks.md §2.9).

librdkafka's idempotent producer can fail fatally (lost sequence state);
its queued events then fail. The agent must not count them as delivered:
it rebuilds the producer and reopens every file at its checkpoint, so the
unacknowledged tail is sent again. The error is injected with
rd_kafka_test_fatal_error() after 30,000 events (the agent's test hook
TRIB_AGENT_TEST_FATAL_AFTER). Every one of 100,000 lines arrives at least
once, the rebuild is counted, and the agent still stops with status 0.

The same for events of a syslog input, which come from the disk buffer:
40,000 messages over TCP with the error after 10,000 events; the records
the failed producer held are handed out again from the buffer, and every
message arrives.
"""
import importlib
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 100000


def check(c, topic, n, m, what):
    """Every seq in [0, n) arrived in topic; m (metrics) counted one rebuild."""
    got = agentlib.seqs(agentlib.consume(c.bootstrap, topic))
    missing = set(range(n)) - set(got)
    log("%d events for %d %s (%d again), %d rebuilds"
        % (len(got), n, what, len(got) - len(set(got)),
           m.get("tributary_agent_producer_rebuilds_total", 0)))
    if missing:
        raise TestFailure("%d %s lost, first %d" % (len(missing), what, min(missing)))
    if m.get("tributary_agent_producer_rebuilds_total", 0) != 1:
        raise TestFailure("rebuilds: %r" % m.get("tributary_agent_producer_rebuilds_total"))


def start_failing(a, after):
    """Starts the agent with the fatal-error hook armed after `after` events."""
    os.environ["TRIB_AGENT_TEST_FATAL_AFTER"] = str(after)
    try:
        a.start()
    finally:
        del os.environ["TRIB_AGENT_TEST_FATAL_AFTER"]


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "app.log")
    with open(path, "w") as f:
        f.write("".join(agentlib.access_line(i) for i in range(N)))
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: app
    inputs:
      - type: tail
        paths: ["%s"]
    topic: agent.fatal
""" % path)
    with agentlib.guard(a):
        start_failing(a, 30000)
        size = os.path.getsize(path)
        agentlib.wait_for(lambda: any(r["offset"] == size for r in a.checkpoints()), 120,
                          "the checkpoint to reach the end of the file")
        m = a.metrics()
        a.stop("TERM")
        check(c, "agent.fatal", N, m, "lines")
    syslog_phase(c)


def syslog_phase(c, n=40000):
    port = agentlib.free_port()
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: net
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: agent.fatal.syslog
""" % port, name="syslog-agent")
    with agentlib.guard(a):
        start_failing(a, 10000)
        agentlib.wait_listening(a)
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        for base in range(0, n, 1000):
            s.sendall(b"".join(b"<14>Nov 26 10:00:00 web-1 app: message seq=%d\n" % i
                               for i in range(base, base + 1000)))
        s.close()
        agentlib.wait_for(
            lambda: a.metrics().get("tributary_agent_syslog_received_total", 0) >= n and
            a.metrics().get("tributary_agent_buffer_events", -1) == 0, 120,
            "every message buffered and acknowledged")
        m = a.metrics()
        a.stop("TERM")
        check(c, "agent.fatal.syslog", n, m, "messages")


run_test(main)
