# SPDX-License-Identifier: Apache-2.0
"""Many files, few descriptors, no inotify, deletions.

60 files of 2,000 lines each are tailed with max_open_files: 8 and inotify
off (stat polling only, as after a fallback): files wait for a descriptor,
inactive ones are closed after close_inactive and reopened at their
checkpoint when they grow. Ten files are deleted after they were written
(read to their end, then closed); twenty get more lines later. Every line
arrives exactly once, and the open-file count never exceeds the cap.
"""
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
FILES = 60
PER = 2000
CAP = 8


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: many
    inputs:
      - type: tail
        paths: ["%s/*.log"]
        max_open_files: %d
        close_inactive: 1s
        rotate_wait: 200ms
        inotify: false
        scan_interval: 200ms
        poll_interval: 50ms
    topic: agent.many
""" % (logs, CAP))
    seq = 0
    expect = set()

    def write(k, n):
        nonlocal seq
        with open(os.path.join(logs, "f%03d.log" % k), "a") as f:
            f.write("".join(agentlib.access_line(i) for i in range(seq, seq + n)))
        expect.update(range(seq, seq + n))
        seq += n

    try:
        for k in range(FILES):
            write(k, PER)
        a.start()
        peak = 0

        def all_acked():
            nonlocal peak
            m = a.metrics()
            peak = max(peak, m.get("tributary_agent_open_files", 0))
            return m.get("tributary_agent_events_acked_total", 0) >= len(expect)

        agentlib.wait_for(all_acked, 120, "the first %d lines" % len(expect))
        for k in range(10):
            os.unlink(os.path.join(logs, "f%03d.log" % k))
        for k in range(20, 40):
            write(k, 500)
        agentlib.wait_for(all_acked, 120, "the appended lines")
        time.sleep(0.5)
        m = a.metrics()
        a.stop("TERM")
        got = agentlib.seqs(agentlib.consume(c.bootstrap, "agent.many"))
        log("%d lines in %d files, %d events; open files peaked at %d (cap %d), %d opens, "
            "%d closes, %d waits for a descriptor"
            % (len(expect), FILES, len(got), peak, CAP,
               m.get("tributary_agent_files_opened_total", 0),
               m.get("tributary_agent_files_closed_total", 0),
               m.get("tributary_agent_open_capped_total", 0)))
        if sorted(got) != sorted(expect):
            s = set(got)
            raise TestFailure("%d duplicates, %d missing" % (len(got) - len(s),
                                                            len(expect - s)))
        if peak > CAP:
            raise TestFailure("%d files open, cap %d" % (peak, CAP))
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main)
