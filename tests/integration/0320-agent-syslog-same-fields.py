#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A syslog line gets the same fields whichever way it reaches the agent.

One agent, two pipelines: a syslog input (UDP) and a tail input whose
pipeline has `parse: [{type: syslog}]`, both with timezone +05:30. The same
lines (RFC 5424 with structured data, RFC 3164 with and without PRI, one
that is neither) are sent to the listener and appended to the file. Every
event from one path has exactly the fields, with the same values, of the
event from the other, except "source" (the peer's address, the file's
path) and, for a line without a time of its own, @timestamp (when each
was read). Both carry "pri" and read the RFC 3164 time in the zone given.
"""
import importlib
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
NET = "agent.syslog.net"
FILE = "agent.syslog.file"

# (line, it has a time of its own)
LINES = [
    ('<165>1 2026-11-26T10:00:00.5Z web-9 app 77 ID47 [ex@32473 a="1" b="x\\"y"] one', True),
    ("<13>Nov 26 10:00:01 web-9 cron[78]: two", True),
    ("<38>1 2026-11-26T12:00:00+01:00 db-1 sshd - - - three", True),
    ("Nov 26 10:00:03 web-9 kernel: four, no PRI", True),
    ("<191>1 - - - - - five, nothing but PRI and message", False),
    ("this is not syslog at all", False),
]


def main(c):
    agentlib.require_kcat()
    udp = agentlib.free_port(socket.SOCK_DGRAM)
    path = os.path.join(c.tmp, "syslog.log")
    open(path, "w").close()
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: net
    inputs:
      - {type: syslog, id: net, mode: udp, address: "127.0.0.1:%d", timezone: "+05:30"}
    topic: %s
  - name: file
    inputs:
      - {type: tail, id: file, paths: ["%s"], timezone: "+05:30"}
    parse:
      - {type: syslog}
    topic: %s
""" % (udp, NET, path, FILE))
    with agentlib.guard(a):
        a.start()
        agentlib.wait_listening(a, b"listening on 127.0.0.1:%d" % udp)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with open(path, "a") as f:
            for line, _ in LINES:
                s.sendto(line.encode(), ("127.0.0.1", udp))
                f.write(line + "\n")
        s.close()
        n = 2 * len(LINES)
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_events_acked_total", 0) >= n,
                          60, "%d events acknowledged" % n)
        net = agentlib.consume(c.bootstrap, NET)
        fil = agentlib.consume(c.bootstrap, FILE)
        a.stop("TERM")
    if len(net) != len(LINES) or len(fil) != len(LINES):
        raise TestFailure("%d events from the listener and %d from the file, not %d each"
                          % (len(net), len(fil), len(LINES)))
    # the topics may have several partitions: events are matched by message
    by_net = {e.get("message"): e for e in net}
    by_fil = {e.get("message"): e for e in fil}
    if set(by_net) != set(by_fil) or len(by_net) != len(LINES):
        raise TestFailure("messages differ: listener %s, file %s" % (sorted(by_net), sorted(by_fil)))
    pairs = []
    for line, timed in LINES:
        e2 = [e for e in fil if e.get("message") and line.endswith(e["message"])]
        if len(e2) != 1:
            raise TestFailure("%r: %d events from the file end with its message" % (line, len(e2)))
        pairs.append((line, timed, by_net[e2[0]["message"]], e2[0]))
    compared = 0
    for line, timed, e1, e2 in pairs:
        skip = {"source"} if timed else {"source", "@timestamp"}
        k1 = set(e1) - skip
        k2 = set(e2) - skip
        if k1 != k2:
            raise TestFailure("%r: fields differ: only from the listener %s, only from the file "
                              "%s\n  listener: %s\n  file:     %s"
                              % (line, sorted(k1 - k2), sorted(k2 - k1), e1, e2))
        for k in sorted(k1):
            if e1[k] != e2[k]:
                raise TestFailure("%r: %s is %r from the listener, %r from the file"
                                  % (line, k, e1[k], e2[k]))
            compared += 1
        if e2.get("source") != path or e1.get("source") != "127.0.0.1":
            raise TestFailure("%r: sources %r and %r" % (line, e1.get("source"), e2.get("source")))
    two = pairs[1][3]
    if two.get("pri") != 13 or not two.get("@timestamp", "").endswith("-11-26T04:30:01.000Z"):
        raise TestFailure("RFC 3164 line without a zone: pri %r, @timestamp %r (want 13 and "
                          "10:00:01 at +05:30)" % (two.get("pri"), two.get("@timestamp")))
    bad = pairs[5][3]
    if bad.get("parse_error") is not True or bad.get("parse_error_by") != "syslog":
        raise TestFailure("the malformed line is not marked: %s" % bad)
    log("%d lines, %d field values equal on both paths" % (len(LINES), compared))


if __name__ == "__main__":
    sys.exit(run_test(main))
