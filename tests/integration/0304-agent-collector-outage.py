# SPDX-License-Identifier: Apache-2.0
"""The collector stopped for 30 s in the middle of a run and restarted on
the same port: nothing is lost, the agent keeps its RSS under
memory_limit meanwhile (reading pauses when max_inflight_bytes are
waiting: backpressure, not buffering), and everything arrives once the
collector is back.

300,000 lines are written at ~25,000 lines/s from before the outage to
well into it. The idempotent producer retries the requests that were in
flight at the stop; the collector keeps producer state across restarts,
so duplicates are reported, not expected.
"""
import importlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 300000
OUTAGE = 30.0
LIMIT_MIB = 24



PORT = agentlib.free_port()


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
    topic: agent.outage
""" % path, agent_extra="  memory_limit: %dMiB\n" % LIMIT_MIB,
        output_extra="  options: {reconnect.backoff.max.ms: 500}\n")

    def writer():
        with open(path, "w") as f:
            for base in range(0, N, 2500):
                f.write("".join(agentlib.access_line(i) for i in range(base, base + 2500)))
                f.flush()
                time.sleep(0.1)

    try:
        open(path, "w").close()
        a.start()
        w = threading.Thread(target=writer)
        w.start()
        time.sleep(3)
        c.stop("TERM")
        t0 = time.monotonic()
        peak = 0
        while time.monotonic() - t0 < OUTAGE:
            if not a.alive():
                raise TestFailure("the agent died during the outage")
            peak = max(peak, a.rss_kib())
            time.sleep(0.25)
        m = a.metrics()
        log("outage over: agent peak RSS %d KiB (limit %d MiB), %d events acknowledged, "
            "%d paused" % (peak, LIMIT_MIB, m.get("tributary_agent_events_acked_total", 0),
                           m.get("tributary_agent_backpressure_pauses_total", 0)))
        if agentlib.sanitized():
            log("an ASan build: its RSS (shadow memory, quarantine) is not checked")
        elif peak >= LIMIT_MIB * 1024:
            raise TestFailure("agent RSS %d KiB reached memory_limit %d MiB" % (peak, LIMIT_MIB))
        c.start()
        if c.bootstrap != "127.0.0.1:%d" % PORT:
            raise TestFailure("the collector came back on %s" % c.bootstrap)
        w.join()
        size = os.path.getsize(path)
        agentlib.wait_for(lambda: any(r["offset"] == size for r in a.checkpoints()), 120,
                          "the checkpoint to reach the end of the file")
        a.stop("TERM")
        got = agentlib.seqs(agentlib.consume(c.bootstrap, "agent.outage"))
        missing = set(range(N)) - set(got)
        log("%d events for %d lines (%d duplicates)" % (len(got), N, len(got) - len(set(got))))
        if missing:
            raise TestFailure("%d lines lost, first %d" % (len(missing), min(missing)))
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main, extra_args=["--listen", "127.0.0.1:%d" % PORT])
