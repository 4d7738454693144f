# SPDX-License-Identifier: Apache-2.0
"""The agent SIGKILLed 5 times while 200,000 lines are written, restarted
each time: every line arrives at least once, and duplicates come only from
the unacknowledged tail.

The checkpoint file is read after each kill (it is replaced atomically, so
it is what the next start resumes from). The consumed sequence must be a
few runs of consecutive lines: the first from line 0, each next one
starting exactly at a checkpoint taken at a kill and at or before the end
of the run before it (so the checkpoint never passed an unacknowledged
line, and the re-sent lines are the tail that was not acknowledged).
"""
import bisect
import importlib
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 200000
KILLS = 5


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "app.log")
    lines = [agentlib.access_line(i) for i in range(N)]
    ends = []
    pos = 0
    for ln in lines:
        pos += len(ln)
        ends.append(pos)
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: app
    inputs:
      - type: tail
        paths: ["%s"]
    topic: agent.kill
""" % path, agent_extra="  memory_limit: 16MiB\n")
    done = threading.Event()

    def writer():
        with open(path, "w") as f:
            for base in range(0, N, 2000):
                f.write("".join(lines[base:base + 2000]))
                f.flush()
                time.sleep(0.04)  # ~50,000 lines/s: the kills land mid-file
        done.set()

    rng = random.Random(7)
    resume_lines = []
    try:
        open(path, "w").close()
        a.start()
        w = threading.Thread(target=writer)
        w.start()
        for k in range(KILLS):
            time.sleep(rng.uniform(0.3, 0.8))
            a.stop("KILL")
            cps = a.checkpoints()
            off = cps[0]["offset"] if cps else 0
            # the line index the next run starts at
            idx = bisect.bisect_right(ends, off) if off else 0
            if off and ends[idx - 1] != off:
                raise TestFailure("checkpoint %d is not at a line end" % off)
            resume_lines.append(idx)
            log("kill %d: checkpoint at byte %d = line %d" % (k + 1, off, idx))
            a.start()
        w.join()
        agentlib.wait_for(lambda: any(r["offset"] == ends[-1] for r in a.checkpoints()), 120,
                          "the checkpoint to reach the end of the file")
        a.stop("TERM")
        got = agentlib.seqs(agentlib.consume(c.bootstrap, "agent.kill"))
        missing = set(range(N)) - set(got)
        if missing:
            raise TestFailure("%d lines lost, first %d" % (len(missing), min(missing)))
        runs = []
        start = 0
        for i in range(1, len(got) + 1):
            if i == len(got) or got[i] != got[i - 1] + 1:
                runs.append((got[start], got[i - 1]))
                start = i
        log("%d events for %d lines (%d duplicates) in runs %s; resumed at %s"
            % (len(got), N, len(got) - N, runs, resume_lines))
        if runs[0][0] != 0:
            raise TestFailure("the first run starts at line %d" % runs[0][0])
        for i in range(1, len(runs)):
            r0 = runs[i][0]
            if r0 not in resume_lines:
                raise TestFailure("a run starts at line %d, not at a checkpoint %s"
                                  % (r0, resume_lines))
            if r0 > runs[i - 1][1] + 1:
                raise TestFailure("lines %d..%d skipped" % (runs[i - 1][1] + 1, r0 - 1))
        if runs[-1][1] != N - 1:
            raise TestFailure("the last run ends at %d" % runs[-1][1])
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main)
