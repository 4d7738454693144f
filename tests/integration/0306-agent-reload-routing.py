# SPDX-License-Identifier: Apache-2.0
"""SIGHUP reload and routing.

The first configuration parses access lines with a regex, routes them to
web.{method} with key {client}, and drops 404s (exclude). 20,000 lines are
shipped; then a bad configuration is written and SIGHUP must leave the
agent running with its pipelines; then a good new configuration (a `set`
filter, another topic) is loaded with SIGHUP and 20,000 more lines are
written. Every line arrives exactly once (no line re-read or lost across
the reloads), 404s nowhere, each in the topic its configuration chose,
with the fields the regex and filters gave it, and headers source_type
and path (and event.id). --dry-run prints the same events as JSON lines.
"""
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 20000
PARSE = r"""    parse:
      - type: regex
        pattern: '^(?<client>\S+) \S+ \S+ \[(?<time>[^\]]+)\] "(?<method>\S+) (?<path>\S+)[^"]*" (?<status>\d{3}) (?<bytes>\d+)'
        time_field: time
        time_format: '%d/%b/%Y:%H:%M:%S %z'
"""


def pipeline(path, topic, extra_filter=""):
    return ("""
  - name: web
    inputs:
      - type: tail
        paths: ["%s"]
""" % path) + PARSE + """    filters:
      - {type: exclude, field: status, match: '^404$'}
%s    topic: "%s"
    key: "{client}"
""" % (extra_filter, topic)


def write(path, lo, hi):
    with open(path, "a") as f:
        f.write("".join(agentlib.access_line(i) for i in range(lo, hi)))


def expected(lo, hi):
    return [i for i in range(lo, hi) if (200, 200, 200, 304, 404, 500)[i % 6] != 404]


def main(c):
    agentlib.require_kcat()
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "access.log")
    a = agentlib.Agent(c.tmp, c.bootstrap, pipeline(path, "web.{method}"))
    try:
        write(path, 0, N)
        # --dry-run: the same events as JSON lines, nothing shipped, no checkpoint written
        dry = subprocess.run([agentlib.AGENT, "--config", a.conf, "--dry-run", "--once"],
                             capture_output=True, timeout=60)
        if dry.returncode != 0:
            raise TestFailure("--dry-run --once: status %d: %s" % (dry.returncode, dry.stderr))
        rows = [json.loads(l) for l in dry.stdout.decode().splitlines()]
        if len(rows) != len(expected(0, N)):
            raise TestFailure("--dry-run printed %d events, not %d" % (len(rows),
                                                                        len(expected(0, N))))
        r0 = rows[0]
        if (r0["topic"] != "web.GET" or r0["value"]["method"] != "GET"
                or r0["headers"] != {"source_type": "tail", "path": path,
                                     "event.id": r0["headers"].get("event.id")}
                or not re.fullmatch("[0-9a-f]{16}0100000000000000", r0["headers"]["event.id"])
                or r0["key"] != r0["value"]["client"]
                or r0["value"]["@timestamp"] != "2026-11-26T10:00:00.000Z"):
            raise TestFailure("unexpected dry-run event %r" % r0)
        if os.path.exists(os.path.join(a.state, "checkpoints")):
            raise TestFailure("--dry-run wrote checkpoints")

        a.start()
        size = os.path.getsize(path)
        agentlib.wait_for(lambda: any(r["offset"] == size for r in a.checkpoints()), 60,
                          "the first lines to be acknowledged")
        # a bad configuration: reported, the old pipelines go on
        good = open(a.conf).read()
        with open(a.conf, "w") as f:
            f.write(good.replace("topic:", "topik:"))
        a.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        if not a.alive():
            raise TestFailure("a bad reload stopped the agent")
        # a good new configuration
        a.pipelines = pipeline(path, "reloaded", "      - {type: set, field: env, value: prod}\n")
        a.write_config()
        a.proc.send_signal(signal.SIGHUP)
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_reloads_total", 0) >= 1, 30,
                          "the reload")
        write(path, N, 2 * N)
        size = os.path.getsize(path)
        agentlib.wait_for(lambda: any(r["offset"] == size for r in a.checkpoints()), 60,
                          "the new lines to be acknowledged")
        m = a.metrics()
        a.stop("TERM")
        if m.get("tributary_agent_reload_failures_total", 0) != 1:
            raise TestFailure("reload failures: %r" % m.get("tributary_agent_reload_failures_total"))
        first = []
        for t in ("web.GET",):
            vals = agentlib.consume(c.bootstrap, t)
            for v in vals:
                if v["method"] != "GET" or "env" in v or v["status"] == "404":
                    raise TestFailure("unexpected event in %s: %r" % (t, v))
            first += agentlib.seqs(vals)
        second = agentlib.consume(c.bootstrap, "reloaded")
        for v in second:
            if v.get("env") != "prod" or v["status"] == "404":
                raise TestFailure("unexpected event after the reload: %r" % v)
        got = sorted(first + agentlib.seqs(second))
        want = expected(0, 2 * N)
        if got != want:
            raise TestFailure("%d events, %d expected (%d distinct)" % (len(got), len(want),
                                                                      len(set(got))))
        if sorted(agentlib.seqs(second)) != expected(N, 2 * N):
            raise TestFailure("the reloaded pipeline did not take exactly the new lines")
        log("%d events before and %d after the reload, exactly once" % (len(first), len(second)))
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


run_test(main)
