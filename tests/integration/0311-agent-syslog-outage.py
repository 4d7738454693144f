# SPDX-License-Identifier: Apache-2.0
"""Syslog over TCP through a 60 s collector outage, with the agent
SIGKILLed in the middle of it: every one of 50,000 messages is delivered.

The collector is stopped; 25,000 octet-counted RFC 5424 messages arrive
over TCP; once the agent's metrics say it accepted them all it is killed
with SIGKILL (what it accepted is in its disk buffer, not yet
acknowledged by anyone) and started again; 25,000 more arrive. Sixty
seconds after the stop the collector comes back on the same port, and
the topic must then hold all 50,000 (duplicates are allowed: the buffer
is at-least-once across a kill).
"""
import importlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 50000
OUTAGE = 60.0
TOPIC = "agent.syslog.outage"



PORT = agentlib.free_port()
SYSLOG = agentlib.free_port()


def frames(lo, hi):
    out = []
    for i in range(lo, hi):
        msg = ("<134>1 2026-11-26T10:00:00.000Z web-%d app %d - - request done seq=%d"
               % (i % 10, i, i)).encode()
        out.append(b"%d %s" % (len(msg), msg))
    return b"".join(out)


def send(lo, hi):
    s = socket.create_connection(("127.0.0.1", SYSLOG), timeout=60)
    for base in range(lo, hi, 1000):
        s.sendall(frames(base, min(hi, base + 1000)))
    s.close()


def main(c):
    agentlib.require_kcat()
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
""" % (SYSLOG, TOPIC), output_extra="  options: {reconnect.backoff.max.ms: 500}\n")

    def received():
        return a.metrics().get("tributary_agent_syslog_received_total", 0)

    with agentlib.guard(a):
        a.start()
        agentlib.wait_listening(a)
        c.stop("TERM")
        t0 = time.monotonic()
        send(0, N // 2)
        agentlib.wait_for(lambda: received() >= N // 2, 60, "%d messages accepted" % (N // 2))
        m = a.metrics()
        log("collector down: %d accepted, %d bytes buffered; SIGKILL"
            % (received(), m.get("tributary_agent_buffer_bytes", 0)))
        a.stop("KILL")
        os.unlink(a.metrics_file)  # the next run's counters start from 0
        a.start()
        agentlib.wait_listening(a)
        send(N // 2, N)
        agentlib.wait_for(lambda: received() >= N // 2, 60,
                          "%d messages accepted after the restart" % (N // 2))
        while time.monotonic() - t0 < OUTAGE:
            if not a.alive():
                raise TestFailure("the agent died during the outage")
            time.sleep(0.25)
        log("outage over after %.0f s: %d events in the buffer"
            % (time.monotonic() - t0, a.metrics().get("tributary_agent_buffer_events", 0)))
        c.start()
        if c.bootstrap != "127.0.0.1:%d" % PORT:
            raise TestFailure("the collector came back on %s" % c.bootstrap)
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_buffer_events", -1) == 0,
                          180, "the buffer to empty")
        a.stop("TERM")
        vals = agentlib.consume(c.bootstrap, TOPIC)
        got = agentlib.seqs(vals)
        missing = set(range(N)) - set(got)
        log("%d events for %d messages (%d duplicates)" % (len(got), N, len(got) - len(set(got))))
        if missing:
            raise TestFailure("%d messages lost, first %d" % (len(missing), min(missing)))


run_test(main, extra_args=["--listen", "127.0.0.1:%d" % PORT])
