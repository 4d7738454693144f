# SPDX-License-Identifier: Apache-2.0
"""Helpers of the security tests (07xx): certificates made with the openssl
command, a collector started with listeners[] from a config file, SCRAM
users added offline, raw Kafka frames over TLS, and the clients' settings.

    import importlib; seclib = importlib.import_module("0719_seclib")

    LISTENERS = '''
      - name: tls
        address: 127.0.0.1:0
        security: ssl
        tls: {cert: @SERVER_CERT@, key: @SERVER_KEY@}
    '''
    def main(c):             # c.listeners["tls"] is "127.0.0.1:PORT"
        ...
    seclib.run(main, LISTENERS, users=[("alice", "pw", "SCRAM-SHA-512")])

@NAME@ in the listeners text is replaced by the PKI's file paths (c.pki).
The harness's plaintext listener (--listen 127.0.0.1:0) stays first:
c.bootstrap is plaintext.
"""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, Reader, s16, s32, string  # noqa: E402,F401
from tributary_harness import (COLLECTOR, SKIP, Collector, Skip, TestFailure,  # noqa: E402
                               broker_available, log)


def require(*tools):
    for t in tools:
        if not shutil.which(t):
            raise Skip("%s is not installed" % t)


def openssl(cwd, *args):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise TestFailure("openssl %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def make_cert(d, name, subject, ca, days=2, san="DNS:localhost,IP:127.0.0.1"):
    """A key and a certificate signed by ca ("ca" or "rogue"), in d/NAME.key and d/NAME.pem."""
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", subject)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", str(days), "-extfile",
            name + ".ext")
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def make_expired_cert(d, name, subject, ca="ca"):
    """A certificate from ca whose validity ended in 2020 (openssl ca -enddate)."""
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = index.txt\n"
                "new_certs_dir = .\nserial = serial\ndefault_md = sha256\n"
                "policy = policy_any\n[policy_any]\ncommonName = supplied\n"
                "organizationName = optional\n")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", subject)
    openssl(d, "ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem", "-keyfile", ca + ".key",
            "-in", name + ".csr", "-out", name + ".pem", "-startdate", "200101000000Z",
            "-enddate", "200102000000Z", "-notext")
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def make_pki(d):
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate
    (CN=client,O=Tributary) from the CA, and a rogue CA with its own client."""
    os.makedirs(d, exist_ok=True)
    for ca, cn in (("ca", "Tributary Test CA"), ("rogue", "Rogue CA")):
        openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key",
                "-out", ca + ".pem", "-days", "2", "-subj", "/CN=%s" % cn)
    pki = {"CA": os.path.join(d, "ca.pem"), "ROGUE_CA": os.path.join(d, "rogue.pem"), "DIR": d}
    pki["SERVER_CERT"], pki["SERVER_KEY"] = make_cert(d, "server", "/CN=localhost", "ca")
    pki["CLIENT_CERT"], pki["CLIENT_KEY"] = make_cert(d, "client", "/O=Tributary/CN=client", "ca",
                                                      san="DNS:client")
    pki["ROGUE_CERT"], pki["ROGUE_KEY"] = make_cert(d, "rogueclient", "/CN=client", "rogue",
                                                    san="DNS:client")
    return pki


class SecCollector(Collector):
    def __init__(self, listeners, extra_yaml="", extra_args=()):
        super().__init__()
        self.pki = make_pki(os.path.join(self.tmp, "pki"))
        for k, v in self.pki.items():
            listeners = listeners.replace("@%s@" % k, v)
        self.config = os.path.join(self.tmp, "collector.yaml")
        with open(self.config, "w") as f:
            f.write("listeners:\n" + listeners + "\n" + extra_yaml)
        self.extra = ["-c", self.config, "--log-level", "debug"] + list(extra_args)
        self.listeners = {}

    def start(self):
        super().start()
        with open(os.path.join(self.tmp, "ready")) as f:
            for line in f.read().splitlines():
                w = line.split()
                if len(w) == 3 and w[0] == "listener":
                    self.listeners[w[1]] = w[2]
        log("listeners: %r" % self.listeners)
        return self

    def add_user(self, name, password, mechanism="SCRAM-SHA-512"):
        """tributary-collector --add-user, offline (the collector must be stopped)."""
        p = subprocess.run([COLLECTOR, "--add-user", name, "--mechanism", mechanism,
                            "--iterations", "4096", "--data-dir", self.data],
                           input=password + "\n", capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise TestFailure("--add-user %s: exit %d: %s" % (name, p.returncode, p.stderr))
        return p

    def log_text(self):
        out = ""
        for path in self.logs:
            with open(path, "rb") as f:
                out += f.read().decode("utf-8", "replace")
        return out


def metric(c, name):
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise TestFailure("no metric %s" % name)


def wait_for(what, cond, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TestFailure("timed out waiting for %s" % what)
        time.sleep(0.05)


def tls_context(c, cert=False, ca=None):
    ctx = ssl.create_default_context(cafile=ca or c.pki["CA"])
    if cert:
        ctx.load_cert_chain(c.pki["CLIENT_CERT"], c.pki["CLIENT_KEY"])
    return ctx


def tls_conn(c, addr, cert=False, ctx=None):
    """A kafka_raw.Conn over TLS to addr."""
    conn = Conn(addr)
    conn.sock = (ctx or tls_context(c, cert)).wrap_socket(conn.sock, server_hostname="localhost")
    return conn


def closed(conn, timeout=10.0):
    """True when the peer closes the connection (or the TLS session fails) within timeout."""
    conn.sock.settimeout(timeout)
    try:
        while True:
            if not conn.sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def kcat(args, props, input=None, timeout=60):
    cmd = ["kcat"] + list(args)
    for k, v in props.items():
        cmd += ["-X", "%s=%s" % (k, v)]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)


def kcat_roundtrip(addr, props, topic, n=1000):
    """kcat produces n lines into topic and reads them all back."""
    lines = b"".join(b"%s-%d\n" % (topic.encode(), i) for i in range(n))
    p = kcat(["-P", "-b", addr, "-t", topic], props, input=lines)
    if p.returncode != 0:
        raise TestFailure("kcat -P %s: %s" % (topic, p.stderr.decode(errors="replace")))
    p = kcat(["-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q"], props)
    if p.returncode != 0:
        raise TestFailure("kcat -C %s: %s" % (topic, p.stderr.decode(errors="replace")))
    got = sorted(p.stdout.splitlines())
    want = sorted(lines.splitlines())
    if got != want:
        raise TestFailure("kcat read %d records back from %s, %d were produced"
                          % (len(got), topic, len(want)))
    log("kcat: %d records through %s (%s)" % (n, topic, props.get("security.protocol")))


def confluent_roundtrip(addr, conf, topic, n=500, group=None):
    """confluent-kafka produces n records and a group consumer reads them all."""
    from confluent_kafka import Consumer, Producer
    p = Producer(dict(conf, **{"bootstrap.servers": addr}))
    for i in range(n):
        p.produce(topic, key=b"k%d" % (i % 7), value=b"v%d" % i)
    left = p.flush(30)
    if left:
        raise TestFailure("confluent-kafka: %d records not delivered to %s" % (left, topic))
    cons = Consumer(dict(conf, **{"bootstrap.servers": addr, "group.id": group or topic + "-g",
                                  "auto.offset.reset": "earliest",
                                  "session.timeout.ms": 6000}))
    cons.subscribe([topic])
    seen = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < n and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise TestFailure("confluent-kafka consumer: %s" % m.error())
            seen.add(m.value())
        cons.commit(asynchronous=False)
    finally:
        cons.close()
    if len(seen) != n:
        raise TestFailure("confluent-kafka group read %d of %d records of %s"
                          % (len(seen), n, topic))
    log("confluent-kafka: %d records through %s with group %s" % (n, topic, group or topic + "-g"))


def kafka_python_roundtrip(addr, kw, topic, n=300):
    """kafka-python produces n records and a group consumer reads them all."""
    from kafka import KafkaConsumer, KafkaProducer
    prod = KafkaProducer(bootstrap_servers=addr, acks="all", **kw)
    for i in range(n):
        prod.send(topic, value=b"p%d" % i)
    prod.flush(30)
    prod.close()
    cons = KafkaConsumer(topic, bootstrap_servers=addr, group_id=topic + "-kp",
                         auto_offset_reset="earliest", consumer_timeout_ms=3000, **kw)
    seen = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < n and time.monotonic() < deadline:
            for m in cons:
                seen.add(m.value)
        cons.commit()
    finally:
        cons.close()
    if len(seen) != n:
        raise TestFailure("kafka-python read %d of %d records of %s" % (len(seen), n, topic))
    log("kafka-python: %d records through %s" % (n, topic))


def run(fn, listeners, users=(), extra_yaml="", extra_args=(), before_start=None):
    """Makes the PKI, adds users offline, calls before_start(c), starts the
    collector, runs fn(c), stops it; exits 0, 1 or 77."""
    c = None
    rc = 0
    try:
        broker_available()
        require("openssl")
        c = SecCollector(listeners, extra_yaml, extra_args)
        for u in users:
            c.add_user(*u)
        if before_start:
            before_start(c)
        c.start()
        fn(c)
        c.stop("TERM")
        c.check_logs()
    except Skip as e:
        log("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        rc = 1
    finally:
        if c is not None:
            try:
                if c.proc is not None:
                    c.stop("TERM")
                c.check_logs()
            except BaseException as e:  # noqa: B902
                log("FAIL: %s" % e)
                rc = 1
            if rc not in (0, SKIP):
                c.dump_logs()
                log("kept %s" % c.tmp)
            elif not os.environ.get("TRIB_KEEP_TMP"):
                shutil.rmtree(c.tmp, ignore_errors=True)
    if rc == 0:
        log("PASS")
    sys.exit(rc)
