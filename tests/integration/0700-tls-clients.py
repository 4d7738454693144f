#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""TLS listener: real clients produce and consume, large fetches stay exact.

A collector with the harness's plaintext listener and an `ssl` listener
(a certificate for localhost/127.0.0.1 from a CA made here with openssl):
  - kcat (security.protocol=ssl), confluent-kafka (a consumer group) and
    kafka-python (a consumer group) write and read back every record over
    TLS, verifying the collector's certificate against the CA;
  - Metadata asked on the TLS listener names the TLS listener's port, on
    the plaintext one the plaintext port (each listener advertises itself);
  - a raw client with a 4 KiB receive buffer fetches ~8 MiB in one response
    over TLS, and another over plaintext beside it, reading nothing at
    first: both sends find the socket full (tributary_fetch_send_waits_total
    grows), and the record bytes of both responses equal the segment files
    exactly (the TLS one copied through the pooled chunks, the plaintext
    one still sent with sendfile);
  - a TLS client that closes while its fetch response waits for a full
    socket is let go (its segment references and pooled buffer too) and
    the collector serves on;
  - the handshakes are counted in tributary_tls_handshakes_total.
"""
import importlib
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Reader, array, batch, s32, s64, string  # noqa: E402
from tributary_harness import TestFailure, log  # noqa: E402

LISTENERS = """
  - name: tls
    address: 127.0.0.1:0
    security: ssl
    tls: {cert: "@SERVER_CERT@", key: "@SERVER_KEY@"}
"""
TOPIC = "big"
SEGMENT = 1 << 20
BATCHES = 80
PER_BATCH = 128
VALUE = 1000


def metadata_ports(addr, conf):
    from confluent_kafka.admin import AdminClient
    md = AdminClient(dict(conf, **{"bootstrap.servers": addr})).list_topics(timeout=20)
    return sorted(b.port for b in md.brokers.values())


def start_slow_fetch(sock, corr):
    """Fetch v4 of everything (50 MiB limits) on a socket that reads nothing yet."""
    body = s32(-1) + s32(0) + s32(1) + s32(50 << 20) + b"\x00"
    body += array([string(TOPIC) + array([s32(0) + s64(0) + s32(50 << 20)])])
    hdr = struct.pack(">hhi", 1, 4, corr) + string("slow")
    sock.sendall(s32(len(hdr) + len(body)) + hdr + body)


def read_fetch(sock, corr):
    def recv_exact(n):
        out = bytearray()
        while len(out) < n:
            chunk = sock.recv(min(4096, n - len(out)))
            if not chunk:
                raise TestFailure("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return bytes(out)

    size = struct.unpack(">i", recv_exact(4))[0]
    r = Reader(recv_exact(size))
    if r.i32() != corr:
        raise TestFailure("wrong correlation id")
    r.i32()
    parts = []

    def part():
        p, e, hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
        r.array(lambda: (r.i64(), r.i64()))
        parts.append((p, e, hw, r.bytes_()))

    r.array(lambda: (r.string(), r.array(part)))
    if len(parts) != 1 or parts[0][1] != 0:
        raise TestFailure("unexpected partitions: %r" % ([p[:3] for p in parts],))
    return parts[0][3]


def slow_socket(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(60)
    s.connect((host, int(port)))
    return s


def main(c):
    tls = c.listeners["tls"]
    props = {"security.protocol": "ssl", "ssl.ca.location": c.pki["CA"]}
    seclib.kcat_roundtrip(tls, props, "tls-kcat", 2000)
    seclib.confluent_roundtrip(tls, props, "tls-ck", 500)
    seclib.kafka_python_roundtrip(tls, {"security_protocol": "SSL",
                                        "ssl_cafile": c.pki["CA"]}, "tls-kp", 300)

    tls_port = int(tls.rsplit(":", 1)[1])
    plain_port = int(c.bootstrap.rsplit(":", 1)[1])
    got = metadata_ports(tls, props)
    if got != [tls_port]:
        raise TestFailure("Metadata on the TLS listener names ports %r, not %d" % (got, tls_port))
    got = metadata_ports(c.bootstrap, {})
    if got != [plain_port]:
        raise TestFailure("Metadata on the plaintext listener names ports %r, not %d"
                          % (got, plain_port))
    log("Metadata names each listener's own port (%d TLS, %d plaintext)" % (tls_port, plain_port))

    # ~10 MiB in 1 MiB segments; one fetch returns whole batches of the first segments.
    conn = seclib.Conn(c.bootstrap)
    err = conn.create_topic(TOPIC, 1, configs={"segment.bytes": str(SEGMENT)})
    if err != (0, None):
        raise TestFailure("create topic: %r" % (err,))
    for i in range(BATCHES):
        e, _ = conn.produce(TOPIC, 0, batch(PER_BATCH, "b%d" % i, value_size=VALUE))
        if e:
            raise TestFailure("produce: error %d" % e)
    d = os.path.join(c.data, "%s-0" % TOPIC)
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))
    disk = b"".join(open(f, "rb").read() for f in files)

    waits0 = seclib.metric(c, "tributary_fetch_send_waits_total")
    ctx = seclib.tls_context(c)
    slow_tls = ctx.wrap_socket(slow_socket(tls), server_hostname="localhost")
    start_slow_fetch(slow_tls, 41)
    seclib.wait_for("the TLS fetch to find the socket full",
                    lambda: seclib.metric(c, "tributary_fetch_send_waits_total") > waits0)
    waits1 = seclib.metric(c, "tributary_fetch_send_waits_total")
    slow_plain = slow_socket(c.bootstrap)
    start_slow_fetch(slow_plain, 42)
    seclib.wait_for("the plaintext fetch to find the socket full",
                    lambda: seclib.metric(c, "tributary_fetch_send_waits_total") > waits1)
    for name, sock, corr in (("plaintext", slow_plain, 42), ("TLS", slow_tls, 41)):
        data = read_fetch(sock, corr)
        if len(data) < 4 * SEGMENT or data != disk[:len(data)]:
            raise TestFailure("%s fetch: %d record bytes that are not the segment files' first"
                              % (name, len(data)))
        log("%s fetch: %d record bytes equal the segment files" % (name, len(data)))
        sock.close()
    # A TLS client that leaves while its fetch response waits for a full socket.
    waits2 = seclib.metric(c, "tributary_fetch_send_waits_total")
    gone = ctx.wrap_socket(slow_socket(tls), server_hostname="localhost")
    start_slow_fetch(gone, 43)
    seclib.wait_for("the abandoned TLS fetch to find the socket full",
                    lambda: seclib.metric(c, "tributary_fetch_send_waits_total") > waits2)
    conns = seclib.metric(c, "tributary_connections")
    gone.close()
    seclib.wait_for("the abandoned connection to be closed",
                    lambda: seclib.metric(c, "tributary_connections") < conns)
    if conn.api_versions() is None:
        raise TestFailure("the collector stopped answering")
    log("a TLS client leaving mid-response: its connection closed, the collector serves on")
    conn.close()
    if seclib.metric(c, "tributary_tls_handshakes_total") < 4:
        raise TestFailure("TLS handshakes were not counted")


if __name__ == "__main__":
    seclib.run(main, LISTENERS)
