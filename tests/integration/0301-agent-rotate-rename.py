# SPDX-License-Identifier: Apache-2.0
"""Rotation by rename while 10,000 lines/s are written: no line lost, none
twice, each file generation in order.

The writer renames access.log -> access.log.1 (-> .2 ...) every 1.5 s and
starts a new access.log; the agent tails only access.log, so the lines at
the end of each renamed file are read through the fd it kept open. A
final SIGTERM must drain everything (status 0).
"""
import importlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 60000
RATE = 10000


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "access.log")
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: web
    inputs:
      - type: tail
        paths: ["%s"]
        rotate_wait: 1s
    topic: agent.rename
""" % path)
    try:
        open(path, "w").close()
        a.start()
        gens = []
        agentlib.rotating_writer(path, N, RATE, 1.5, "rename", gens)
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_lines_read_total", 0) >= N,
                          60, "every line to be read")
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_events_acked_total", 0) >= N,
                          60, "every event to be acknowledged")
        a.stop("TERM")
        got = agentlib.seqs(agentlib.consume(c.bootstrap, "agent.rename"))
        log("%d rotations, %d events for %d lines" % (len(gens) - 1, len(got), N))
        if len(gens) < 3:
            raise TestFailure("only %d rotations happened" % (len(gens) - 1))
        if sorted(got) != list(range(N)):
            s = set(got)
            raise TestFailure("%d duplicates, %d missing (first %s)"
                              % (len(got) - len(s), N - len(s),
                                 min(set(range(N)) - s) if len(s) < N else None))
        for lo, hi in gens:
            mine = [x for x in got if lo <= x <= hi]
            if mine != list(range(lo, hi + 1)):
                raise TestFailure("generation %d..%d out of order" % (lo, hi))
        m = a.metrics()
        log("rotations seen by the agent: %d" % m.get("tributary_agent_rotations_total", 0))
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main)
