# SPDX-License-Identifier: Apache-2.0
"""A full disk buffer: TCP clients are not read (backpressure) and UDP
datagrams are dropped and counted; nothing a client got through is lost.

The buffer is 64 KiB (16 KiB segments) and the collector is down. A TCP
client sends 60,000 messages (15 MB, more than the kernel's socket
buffers hold): the agent stops reading it once the buffer is full, so
its sendall() blocks. 2,000 UDP datagrams sent meanwhile are dropped and
counted (tributary_agent_drops_total{reason="udp_buffer_full"}). When the
collector comes back the buffer drains, the TCP client is read again and
every one of its 60,000 messages arrives; the UDP datagrams that were
accepted (a short datagram may fit where a long TCP message did not)
arrive too, and accepted + dropped accounts for every datagram.
"""
import importlib
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
N_TCP = 60000
N_UDP = 2000
TOPIC = "agent.buffer.full"



PORT = agentlib.free_port()
# The drain is bounded by the buffer, not by time: 64 KiB holds about 130
# events, and the client is read again a segment at a time as acknowledged
# segments are freed, a few hundred events a second on a loaded machine.
# A wait fails only when nothing moves for this long.
STALL = 60


def wait_moving(cond, progress, what):
    """Waits until cond() while progress() keeps changing; fails once it
    has not changed for STALL seconds."""
    last, since = progress(), time.monotonic()
    while not cond():
        time.sleep(0.2)
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > STALL:
            raise TestFailure("%s: no progress for %d s (at %r)" % (what, STALL, now))
TCP = agentlib.free_port()
UDP = agentlib.free_port(socket.SOCK_DGRAM)


def main(c):
    agentlib.require_kcat()
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
      - {type: syslog, mode: udp, address: "127.0.0.1:%d", receive_buffer: 4MiB}
    topic: %s
""" % (TCP, UDP, TOPIC), output_extra="  options: {reconnect.backoff.max.ms: 500}\n")
    with open(a.conf, "a") as f:
        f.write("buffer: {max_size: 64KiB, segment_size: 16KiB}\n")
    done = threading.Event()
    err = []

    def tcp_client():
        try:
            s = socket.create_connection(("127.0.0.1", TCP), timeout=300)
            pad = "p" * 200
            for i in range(N_TCP):
                s.sendall(b"<14>Nov 26 10:00:00 web-1 tcp: tcp message %s seq=%d\n"
                          % (pad.encode(), i))
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            err.append(e)
        done.set()

    with agentlib.guard(a):
        c.stop("TERM")
        a.start()
        agentlib.wait_listening(a, b"listening on 127.0.0.1:%d" % UDP)
        t = threading.Thread(target=tcp_client)
        t.start()
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_buffer_full_total", 0) > 0,
                          60, "the buffer to fill")
        time.sleep(1.0)
        got_before = a.metrics().get("tributary_agent_syslog_received_total", 0)
        if done.is_set():
            raise TestFailure("the TCP client finished although the buffer was full (%d read)"
                              % got_before)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(N_UDP):
            u.sendto(b"<14>Nov 26 10:00:00 web-2 udp: udp message seq=%d" % i,
                     ("127.0.0.1", UDP))
            if i % 200 == 199:
                time.sleep(0.02)
        u.close()
        def udp_accounted():
            m = a.metrics()
            return (m.get("tributary_agent_syslog_received_total", 0) - got_before +
                    m.get('tributary_agent_drops_total{reason="udp_buffer_full"}', 0) +
                    m.get('tributary_agent_drops_total{reason="udp_receive_queue"}', 0))
        agentlib.wait_for(lambda: udp_accounted() >= N_UDP, 30,
                          "every datagram to be accepted or counted as dropped")
        m = a.metrics()
        log("buffer full: %d TCP messages read, TCP client blocked; UDP drops: %d (buffer full), "
            "%d (receive queue)"
            % (got_before, m.get('tributary_agent_drops_total{reason="udp_buffer_full"}', 0),
               m.get('tributary_agent_drops_total{reason="udp_receive_queue"}', 0)))
        if m.get('tributary_agent_drops_total{reason="udp_buffer_full"}', 0) <= 0:
            raise TestFailure("no datagram was counted as dropped for a full buffer")
        c.start()
        if c.bootstrap != "127.0.0.1:%d" % PORT:
            raise TestFailure("the collector came back on %s" % c.bootstrap)
        def received():
            return a.metrics().get("tributary_agent_syslog_received_total", 0)
        wait_moving(done.is_set, received,
                    "the TCP client to be read again as the buffer drains")
        if err:
            raise TestFailure("TCP client: %s" % err[0])
        def acked():
            return a.metrics().get("tributary_agent_events_acked_total", 0)
        wait_moving(
            lambda: received() >= N_TCP and
            a.metrics().get("tributary_agent_buffer_events", -1) == 0, acked,
            "every TCP message to be read and delivered")
        a.stop("TERM")
        vals = agentlib.consume(c.bootstrap, TOPIC)
        tcp = {int(v["message"].rsplit("=", 1)[1]) for v in vals if v.get("app") == "tcp"}
        udp = [v for v in vals if v.get("app") == "udp"]
        missing = set(range(N_TCP)) - tcp
        log("%d TCP messages delivered, %d UDP" % (len(tcp), len(udp)))
        if missing:
            raise TestFailure("%d TCP messages lost, first %d" % (len(missing), min(missing)))


run_test(main, extra_args=["--listen", "127.0.0.1:%d" % PORT])
