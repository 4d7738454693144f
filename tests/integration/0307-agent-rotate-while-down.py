# SPDX-License-Identifier: Apache-2.0
"""A rotation while the agent is stopped (agents-and-sinks.md §2.1).

The agent ships app.log and stops (SIGTERM). While it is down, more lines
are appended, app.log is renamed to app.log.1 and a new app.log is
written. At the next start the checkpoint matches no globbed file (the
glob is app.log only), so the agent looks for it among the directory's
other files, finds app.log.1 by device, inode and fingerprint, reads its
rest, and reads the new app.log from the beginning: every line exactly
once. Then the same with a SIGKILL instead of a SIGTERM: at least once,
nothing lost.
"""
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
K = 10000


def write(path, lo, hi):
    with open(path, "a") as f:
        f.write("".join(agentlib.access_line(i) for i in range(lo, hi)))


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "app.log")
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: app
    inputs:
      - type: tail
        paths: ["%s"]
        rotate_wait: 500ms
    topic: agent.down
""" % path)
    try:
        n = 0
        for rnd, sig in enumerate(("TERM", "KILL")):
            write(path, n, n + 2 * K)
            n += 2 * K
            a.start()
            size = os.path.getsize(path)
            ino = os.stat(path).st_ino
            agentlib.wait_for(lambda: any(r["ino"] == ino and r["offset"] == size
                                          for r in a.checkpoints()), 60,
                              "the lines to be acknowledged")
            a.stop(sig)
            write(path, n, n + K)  # read after the restart, from the renamed file
            n += K
            os.rename(path, "%s.%d" % (path, rnd + 1))
            write(path, n, n + K)  # the new file
            n += K
        a.start()
        size = os.path.getsize(path)
        ino = os.stat(path).st_ino
        agentlib.wait_for(lambda: any(r["ino"] == ino and r["offset"] == size
                                      for r in a.checkpoints()), 60, "the new file")
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_inflight_events", 1) == 0,
                          60, "the acknowledgements")
        time.sleep(0.5)
        a.stop("TERM")
        got = agentlib.seqs(agentlib.consume(c.bootstrap, "agent.down"))
        missing = set(range(n)) - set(got)
        log("%d lines, %d events, %d duplicates" % (n, len(got), len(got) - len(set(got))))
        if missing:
            raise TestFailure("%d lines lost, first %d" % (len(missing), min(missing)))
        # the SIGTERM round left nothing unacknowledged: its lines came once
        first = [x for x in got if x < 4 * K]
        if sorted(first) != list(range(4 * K)):
            raise TestFailure("the lines around the first rotation came %d times for %d"
                              % (len(first), 4 * K))
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main)
