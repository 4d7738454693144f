# SPDX-License-Identifier: Apache-2.0
"""A damaged disk buffer: one segment cut in the middle of a record, one
with flipped bytes. The agent starts, delivers every intact record and
reports what it quarantined; `tributary-agent buffer check` finds the
damage (exit 1) and `buffer dump` lists the intact records.

While the collector is down, 800 syslog messages fill several 16 KiB
segments; the agent is stopped (SIGTERM: the buffer keeps them). The
last segment is cut 7 bytes short and 16 bytes in the middle of the
second one are inverted. The records `buffer dump` still lists must all
arrive once the collector and the agent are back; at most the few
records the damage touched may be missing. A second start finds a clean
buffer.
"""
import glob
import importlib
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N = 800
TOPIC = "agent.buffer.recovery"



PORT = agentlib.free_port()
SYSLOG = agentlib.free_port()


def buffer_cmd(a, *args):
    return subprocess.run([agentlib.AGENT, "buffer"] + list(args) +
                          ["--dir", os.path.join(a.state, "buffer")],
                          capture_output=True, timeout=60)


def main(c):
    agentlib.require_kcat()
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
""" % (SYSLOG, TOPIC), agent_extra="  shutdown_timeout: 1s\n")
    with open(a.conf, "a") as f:
        f.write("buffer: {segment_size: 16KiB}\n")
    with agentlib.guard(a):
        c.stop("TERM")
        a.start()
        agentlib.wait_listening(a)
        s = socket.create_connection(("127.0.0.1", SYSLOG), timeout=30)
        for i in range(N):
            s.sendall(b"<14>Nov 26 10:00:00 web-1 app[1]: buffered while down seq=%d\n" % i)
        s.close()
        agentlib.wait_for(
            lambda: a.metrics().get("tributary_agent_syslog_received_total", 0) >= N, 60,
            "%d messages accepted" % N)
        a.stop("TERM")
        segs = sorted(glob.glob(os.path.join(a.state, "buffer", "seg-*")))
        log("%d segments: %s" % (len(segs), [os.path.getsize(p) for p in segs]))
        if len(segs) < 3:
            raise TestFailure("expected at least 3 segments, got %d" % len(segs))
        r = buffer_cmd(a, "check")
        if r.returncode != 0:
            raise TestFailure("buffer check of an intact buffer: status %d\n%s%s"
                              % (r.returncode, r.stdout.decode(), r.stderr.decode()))
        # damage: a torn tail on the last segment, inverted bytes in the second
        last = segs[-1]
        os.truncate(last, os.path.getsize(last) - 7)
        with open(segs[1], "r+b") as f:
            size = os.path.getsize(segs[1])
            f.seek(size // 2)
            chunk = f.read(16)
            f.seek(size // 2)
            f.write(bytes(b ^ 0xFF for b in chunk))
        r = buffer_cmd(a, "check")
        log("buffer check (damaged): status %d\n%s" % (r.returncode, r.stdout.decode().strip()))
        if r.returncode != 1:
            raise TestFailure("buffer check of a damaged buffer: status %d, not 1\n%s"
                              % (r.returncode, r.stderr.decode()))
        r = buffer_cmd(a, "dump")
        if r.returncode not in (0, 1):
            raise TestFailure("buffer dump: status %d\n%s" % (r.returncode, r.stderr.decode()))
        intact = set()
        for line in r.stdout.decode().splitlines():
            rec = json.loads(line)
            value = rec["value"]
            if isinstance(value, str):
                value = json.loads(value)
            intact.add(int(value["message"].rsplit("=", 1)[1]))
        log("buffer dump: %d intact records of %d" % (len(intact), N))
        if len(intact) < N - 6 or len(intact) == N:
            raise TestFailure("dump lists %d records: the damage should cost 1 to 6" % len(intact))
        c.start()
        if c.bootstrap != "127.0.0.1:%d" % PORT:
            raise TestFailure("the collector came back on %s" % c.bootstrap)
        os.unlink(a.metrics_file)
        a.start()
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_buffer_events", -1) == 0,
                          120, "the buffer to empty")
        m = a.metrics()
        log("recovered: torn bytes %d, corrupt records %d, quarantined segments %d"
            % (m.get("tributary_agent_buffer_recovered_torn_bytes", 0),
               m.get("tributary_agent_buffer_recovered_corrupt_records", 0),
               m.get("tributary_agent_buffer_quarantined_segments", 0)))
        if m.get("tributary_agent_buffer_recovered_torn_bytes", 0) <= 0:
            raise TestFailure("the torn tail was not reported")
        if m.get("tributary_agent_buffer_recovered_corrupt_records", 0) < 1 or \
                m.get("tributary_agent_buffer_quarantined_segments", 0) < 1:
            raise TestFailure("the corrupt segment was not reported as quarantined")
        if not glob.glob(os.path.join(a.state, "buffer", "quarantine", "*")):
            raise TestFailure("nothing in buffer/quarantine/")
        a.stop("TERM")
        got = set(agentlib.seqs(agentlib.consume(c.bootstrap, TOPIC)))
        lost = intact - got
        if lost:
            raise TestFailure("%d intact records not delivered, first %d" % (len(lost), min(lost)))
        log("%d of %d delivered; %d lost to the damage" % (len(got), N, N - len(got)))
        # a second start: the buffer is clean and empty
        os.unlink(a.metrics_file)
        a.start()
        agentlib.wait_for(lambda: "tributary_agent_buffer_events" in a.metrics(), 30,
                          "the metrics of the second start")
        time.sleep(0.5)
        m = a.metrics()
        if m.get("tributary_agent_buffer_quarantined_segments", 0) != 0 or \
                m.get("tributary_agent_buffer_events", 0) != 0:
            raise TestFailure("the second start found damage or records: %r" % m)
        a.stop("TERM")
        r = buffer_cmd(a, "check")
        if r.returncode != 0:
            raise TestFailure("buffer check after recovery: status %d\n%s"
                              % (r.returncode, r.stdout.decode()))


run_test(main, extra_args=["--listen", "127.0.0.1:%d" % PORT])
