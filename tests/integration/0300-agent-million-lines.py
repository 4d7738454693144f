# SPDX-License-Identifier: Apache-2.0
"""1,000,000 access-log lines (~200 bytes each) tailed into a real collector
and consumed with kcat: every line exactly once, in file order.

The file is written while the agent runs (half before it starts, half
after), so both the initial read and the tail of a growing file are
exercised. The agent stops with SIGTERM (status 0) once everything is
acknowledged; its checkpoint then points at the end of the file, and a
second start sends nothing again.
"""
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 1000000


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "access.log")
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: web
    inputs:
      - type: tail
        paths: ["%s/*.log"]
    topic: agent.million
    key: "{host}"
""" % logs)
    try:
        t0 = time.monotonic()
        with open(path, "w") as f:
            f.write("".join(agentlib.access_line(i) for i in range(N // 2)))
        a.start()
        with open(path, "a") as f:
            for base in range(N // 2, N, 50000):
                f.write("".join(agentlib.access_line(i) for i in range(base, base + 50000)))
                f.flush()
        size = os.path.getsize(path)
        agentlib.wait_for(lambda: any(r["offset"] == size for r in a.checkpoints()), 240,
                          "the checkpoint to reach the end of the file")
        t1 = time.monotonic()
        a.stop("TERM")
        log("agent shipped %d lines (%d bytes) in %.1fs" % (N, size, t1 - t0))
        values = agentlib.consume(c.bootstrap, "agent.million")
        got = agentlib.seqs(values)
        if got != list(range(N)):
            dups = len(got) - len(set(got))
            missing = N - len(set(got))
            first_bad = next((i for i, s in enumerate(got) if s != i), None)
            raise TestFailure("%d events, %d duplicates, %d missing, first out of place at %s"
                              % (len(got), dups, missing, first_bad))
        v = values[0]
        for k in ("@timestamp", "host", "agent", "source", "message"):
            if k not in v:
                raise TestFailure("event without %s: %r" % (k, v))
        if v["source"] != path or v["agent"] != "agent":
            raise TestFailure("unexpected source/agent: %r" % v)
        # A restart finds the checkpoint at the end: nothing is sent again.
        a.start()
        time.sleep(1.5)
        a.stop("TERM")
        again = agentlib.consume(c.bootstrap, "agent.million")
        if len(again) != N:
            raise TestFailure("a restart sent %d events again" % (len(again) - N))
        m = a.metrics()
        log("metrics after restart: %s" % {k: m[k] for k in m if "events" in k})
        a.check_logs()
        log("%d lines exactly once, in order" % N)
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main)
