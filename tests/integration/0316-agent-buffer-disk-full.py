#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A full filesystem under the agent's disk buffer: told from a full
buffer, backpressure, nothing lost, and recovery once space returns.

The agent's state directory is a 2 MiB tmpfs (mounted by the test; it
fails instead of skipping when CI=true and mounting is impossible) and its
buffer may grow to 64 MiB, so the filesystem fills first. The collector
is down. A TCP syslog client sends 30,000 messages (7 MB): once the
filesystem is full the agent stops reading it (what the client sent
later waits in the sockets' buffers). The metrics count the
refusals as tributary_agent_buffer_disk_full_total, not as
tributary_agent_buffer_full_total or write errors, the gauge
tributary_agent_buffer_disk_full is 1, and the log says so a bounded
number of times. When the collector comes back the buffer drains, its
acknowledged segments free the filesystem, the client is read again, the
gauge returns to 0 and all 30,000 messages arrive.
"""
import importlib
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import (TestFailure, log, mount_tmpfs, require_mount,  # noqa: E402
                               run_test, umount)

agentlib = importlib.import_module("0399_agentlib")
N_TCP = 30000
TOPIC = "agent.buffer.diskfull"
PORT = agentlib.free_port()
TCP = agentlib.free_port()


def main(c):
    agentlib.require_kcat()
    require_mount()
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
""" % (TCP, TOPIC), output_extra="  options: {reconnect.backoff.max.ms: 500}\n")
    with open(a.conf, "a") as f:
        f.write("buffer: {max_size: 64MiB, segment_size: 256KiB}\n")
    os.makedirs(a.state)
    ok, why = mount_tmpfs(a.state, "2m")
    if not ok:
        raise TestFailure("mount tmpfs on %s: %s" % (a.state, why))
    done = threading.Event()
    err = []

    def tcp_client():
        try:
            s = socket.create_connection(("127.0.0.1", TCP), timeout=300)
            pad = b"p" * 180
            for i in range(N_TCP):
                s.sendall(b"<14>Nov 26 10:00:00 web-1 tcp: tcp message %s seq=%d\n" % (pad, i))
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            err.append(e)
        done.set()

    try:
        with agentlib.guard(a):
            c.stop("TERM")
            a.start()
            agentlib.wait_listening(a, b"listening on 127.0.0.1:%d" % TCP)
            t = threading.Thread(target=tcp_client, daemon=True)
            t.start()
            agentlib.wait_for(
                lambda: a.metrics().get("tributary_agent_buffer_disk_full_total", 0) > 0, 60,
                "the filesystem under the buffer to fill")
            agentlib.wait_for(lambda: a.metrics().get("tributary_agent_buffer_disk_full") == 1,
                              30, "the disk-full gauge")
            m = a.metrics()
            if m.get("tributary_agent_syslog_received_total", 0) >= N_TCP:
                raise TestFailure("the agent read every message although the disk was full")
            if m.get("tributary_agent_buffer_full_total", 0) != 0:
                raise TestFailure("a full disk was counted as a full buffer: %r" % m)
            if m.get("tributary_agent_buffer_write_errors_total", 0) != 0:
                raise TestFailure("a full disk was counted as write errors: %r" % m)
            got_full = m.get("tributary_agent_syslog_received_total", 0)
            log("disk full: %d messages read, %d appends refused for space, client blocked"
                % (got_full, m["tributary_agent_buffer_disk_full_total"]))
            with open(a.log_path(), "rb") as f:
                lines = [ln for ln in f.read().splitlines() if b"the disk is full" in ln]
            if not lines or len(lines) > 5:
                raise TestFailure("%d log lines say the disk is full (expected 1 to 5)"
                                  % len(lines))
            c.start()
            if c.bootstrap != "127.0.0.1:%d" % PORT:
                raise TestFailure("the collector came back on %s" % c.bootstrap)
            if not done.wait(180):
                raise TestFailure("the TCP client was not read again after space returned")
            if err:
                raise TestFailure("TCP client: %s" % err[0])
            agentlib.wait_for(
                lambda: a.metrics().get("tributary_agent_syslog_received_total", 0) >= N_TCP and
                a.metrics().get("tributary_agent_buffer_events", -1) == 0, 180,
                "every TCP message to be read and delivered")
            if a.metrics().get("tributary_agent_buffer_disk_full") != 0:
                raise TestFailure("the disk-full gauge stayed up after space returned")
            a.stop("TERM")
            vals = agentlib.consume(c.bootstrap, TOPIC)
            seqs = {int(v["message"].rsplit("=", 1)[1]) for v in vals}
            missing = set(range(N_TCP)) - seqs
            log("%d messages delivered after space returned" % len(seqs))
            if missing:
                raise TestFailure("%d messages lost, first %d" % (len(missing), min(missing)))
    finally:
        a.kill_if_running()
        umount(a.state)


run_test(main, extra_args=["--listen", "127.0.0.1:%d" % PORT])
