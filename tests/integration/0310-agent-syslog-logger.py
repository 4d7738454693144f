# SPDX-License-Identifier: Apache-2.0
"""Syslog from util-linux `logger` over UDP, TCP and TLS: every message
arrives in the topic with facility, severity, hostname, app and message
parsed.

logger sends RFC 3164 and RFC 5424 messages over UDP (-d) and TCP with
octet counting (-T --octet-count). logger has no TLS, so for TLS it writes
the same octet-counted frames to a unix socket of this test, which relays
the bytes unchanged over a TLS connection (Python's ssl, verifying the
agent's certificate against a CA made here with openssl, and presenting a
client certificate for relay.test, which the agent requires with tls.ca
and tls.peer_names) to the agent's RFC 5425 listener. A newline-framed client and a client that sends
garbage (lenient mode keeps it as parse_error) are checked too. Last, a
SIGHUP that changes the topic keeps the listeners: a TCP connection
opened before the reload delivers after it, into the new topic.
"""
import importlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import Skip, TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
TOPIC = "agent.syslog"



def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    for relay.test, both signed by it."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=tributary-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=relay")
    with open(os.path.join(d, "client.cnf"), "w") as f:
        f.write("subjectAltName=DNS:relay.test\n")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.cnf")
    return {k: os.path.join(d, f) for k, f in
            (("server", "server.crt"), ("server_key", "server.key"), ("ca", "ca.crt"),
             ("client", "client.crt"), ("client_key", "client.key"))}


class TlsRelay:
    """A unix stream socket whose connections are relayed over TLS."""

    def __init__(self, path, port, certs):
        self.path = path
        self.port = port
        self.ctx = ssl.create_default_context(cafile=certs["ca"])
        self.ctx.load_cert_chain(certs["client"], certs["client_key"])
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.sock.settimeout(30)
        self.relayed = 0
        self.error = None

    def relay_one(self):
        """Accepts one logger connection and relays it; call in a thread."""
        try:
            c, _ = self.sock.accept()
            data = b""
            c.settimeout(30)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                data += d
            c.close()
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            with self.ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                t.sendall(data)
            self.relayed += 1
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e


def logger(*args):
    r = subprocess.run(["logger"] + list(args), capture_output=True, timeout=30)
    if r.returncode != 0:
        raise TestFailure("logger %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))


def main(c):
    agentlib.require_kcat()
    for tool in ("logger", "openssl"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
            raise Skip("%s is not installed (scripts/test installs it)" % tool)
    certs = os.path.join(c.tmp, "certs")
    os.makedirs(certs)
    certs = make_certs(certs)
    udp, tcp, tls = (agentlib.free_port(socket.SOCK_DGRAM), agentlib.free_port(),
                     agentlib.free_port())
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: syslog
    inputs:
      - {type: syslog, mode: udp, address: "127.0.0.1:%d", timezone: UTC}
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d", timezone: UTC}
      - {type: syslog, mode: tls, address: "127.0.0.1:%d", timezone: UTC,
         tls: {cert: %s, key: %s, ca: %s, peer_names: [relay.test]}}
    topic: %s
""" % (udp, tcp, tls, certs["server"], certs["server_key"], certs["ca"], TOPIC))
    relay = TlsRelay(os.path.join(c.tmp, "relay.sock"), tls, certs)
    want = {}  # message -> expected fields

    def expect(msg, facility, severity, app, fmt):
        want[msg] = {"facility": facility, "severity": severity, "app": app, "fmt": fmt}

    with agentlib.guard(a):
        a.start()
        agentlib.wait_listening(a, b"listening on 127.0.0.1:%d" % tls)
        n = 0
        for transport in ("udp", "tcp", "tls"):
            for fmt in ("rfc3164", "rfc5424"):
                for (fac, sev) in (("local3", "warning"), ("user", "err"), ("auth", "info")):
                    n += 1
                    msg = "hello %s %s seq=%d" % (transport, fmt, n)
                    app = "app-%s-%d" % (fmt, n)
                    args = ["--" + fmt, "-t", app, "-p", "%s.%s" % (fac, sev)]
                    if fmt == "rfc5424":
                        args += ["--msgid", "M%d" % n, "--sd-id", "test@32473",
                                 "--sd-param", 'seq="%d"' % n]
                    if transport == "udp":
                        logger("-d", "-n", "127.0.0.1", "-P", str(udp), *args, msg)
                    elif transport == "tcp":
                        logger("-T", "--octet-count", "-n", "127.0.0.1", "-P", str(tcp), *args,
                               msg)
                    else:
                        t = threading.Thread(target=relay.relay_one)
                        t.start()
                        logger("-u", relay.path, "-T", "--octet-count", *args, msg)
                        t.join(60)
                        if relay.error is not None:
                            raise TestFailure("TLS relay: %s" % relay.error)
                    expect(msg, fac, sev, app, fmt)
        # a newline-framed client and a message in neither format
        s = socket.create_connection(("127.0.0.1", tcp))
        s.sendall(b"<165>1 2026-11-26T10:00:00.5Z web-9 nl-app 77 ID47 - newline framed one\n"
                  b"<13>Nov 26 10:00:01 web-9 nl-app[78]: newline framed two\n"
                  b"this is not syslog at all\n")
        s.close()
        total = len(want) + 3
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_events_acked_total", 0) >= total,
                          60, "%d events acknowledged" % total)
        vals = agentlib.consume(c.bootstrap, TOPIC)
        by_msg = {}
        for v in vals:
            by_msg.setdefault(v["message"], []).append(v)
        for msg, w in want.items():
            got = by_msg.get(msg)
            if not got:
                raise TestFailure("message %r did not arrive (got %d events)" % (msg, len(vals)))
            e = got[0]
            for field in ("facility", "severity", "app"):
                if e.get(field) != w[field]:
                    raise TestFailure("%r: %s is %r, not %r (event %s)"
                                      % (msg, field, e.get(field), w[field], json.dumps(e)))
            if not e.get("hostname"):
                raise TestFailure("%r: no hostname: %s" % (msg, json.dumps(e)))
            if e.get("host") != socket.gethostname():
                raise TestFailure("%r: host is %r, not this host" % (msg, e.get("host")))
            if w["fmt"] == "rfc5424":
                sd = e.get("structured_data", {})
                seq = msg.rsplit("=", 1)[1]
                if sd.get("test@32473", {}).get("seq") != seq or e.get("msgid") != "M" + seq:
                    raise TestFailure("%r: structured data or msgid wrong: %s"
                                      % (msg, json.dumps(e)))
            if "parse_error" in e:
                raise TestFailure("%r was not parsed: %s" % (msg, json.dumps(e)))
        one = by_msg.get("newline framed one", [{}])[0]
        if (one.get("hostname"), one.get("app"), one.get("procid"), one.get("msgid"),
                one.get("facility"), one.get("severity"), one.get("@timestamp")) != \
                ("web-9", "nl-app", "77", "ID47", "local4", "notice", "2026-11-26T10:00:00.500Z"):
            raise TestFailure("newline-framed RFC 5424 message parsed wrong: %s" % json.dumps(one))
        two = by_msg.get("newline framed two", [{}])[0]
        if (two.get("hostname"), two.get("app"), two.get("procid")) != ("web-9", "nl-app", "78"):
            raise TestFailure("newline-framed RFC 3164 message parsed wrong: %s" % json.dumps(two))
        bad = by_msg.get("this is not syslog at all", [{}])[0]
        if bad.get("parse_error") is not True:
            raise TestFailure("the malformed message was not kept raw: %s" % json.dumps(bad))
        m = a.metrics()
        log("%d events; syslog received %d, parsed %d, parse failures %d; TLS relayed %d"
            % (len(vals), m.get("tributary_agent_syslog_received_total", 0),
               m.get("tributary_agent_syslog_parsed_total", 0),
               m.get("tributary_agent_syslog_parse_failures_total", 0), relay.relayed))
        if m.get("tributary_agent_syslog_parse_failures_total") != 1:
            raise TestFailure("expected exactly 1 parse failure in the metrics")
        # SIGHUP with another topic: the listeners are kept, so a TCP
        # connection opened before the reload delivers after it
        s = socket.create_connection(("127.0.0.1", tcp))
        s.sendall(b"<13>Nov 26 10:00:02 web-9 keep: before the reload\n")
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_syslog_received_total", 0)
                          >= total + 1, 30, "the message before the reload")
        a.pipelines = a.pipelines.replace("topic: %s" % TOPIC, "topic: %s.reloaded" % TOPIC)
        a.write_config()
        a.proc.send_signal(signal.SIGHUP)
        agentlib.wait_for(lambda: a.metrics().get("tributary_agent_reloads_total", 0) >= 1, 30,
                          "the reload")
        s.sendall(b"<13>Nov 26 10:00:03 web-9 keep: after the reload\n")
        s.close()
        logger("-d", "-n", "127.0.0.1", "-P", str(udp), "-t", "keep", "udp after the reload")
        agentlib.wait_for(lambda: len(agentlib.consume(c.bootstrap, TOPIC + ".reloaded")) >= 2,
                          60, "two events in the reloaded pipeline's topic")
        after = {v["message"] for v in agentlib.consume(c.bootstrap, TOPIC + ".reloaded")}
        if after != {"after the reload", "udp after the reload"}:
            raise TestFailure("after the reload: %r" % after)
        with open(a.log_path()) as f:
            since_reload = f.read().split("reloading")[-1]
        if "listening on" in since_reload:
            raise TestFailure("the reload made new listeners:\n%s" % since_reload)
        a.stop("TERM")


run_test(main)
