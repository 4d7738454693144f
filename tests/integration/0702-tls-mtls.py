#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mTLS: a listener with client_auth: required.

  - kcat, confluent-kafka (a consumer group) and kafka-python (a consumer
    group) with the client certificate from the listener's CA produce and
    consume; the connection's principal is the certificate's subject
    (User:CN=client,O=Tributary in the debug log);
  - a client without a certificate is refused: kcat fails, and a raw TLS
    client's ApiVersions gets no answer and a closed connection;
  - a certificate from another CA (same subject) is refused, and so is an
    expired certificate from the listener's own CA;
  - the refusals are logged and counted (tributary_tls_handshake_failures_total).
"""
import importlib
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Closed  # noqa: E402
from tributary_harness import TestFailure, log  # noqa: E402

LISTENERS = """
  - name: mtls
    address: 127.0.0.1:0
    security: ssl
    tls:
      cert: "@SERVER_CERT@"
      key: "@SERVER_KEY@"
      ca: "@CA@"
      client_auth: required
"""


def raw_refused(c, addr, ctx):
    """A raw TLS client's ApiVersions: True when it gets no answer and the connection closes."""
    try:
        conn = seclib.tls_conn(c, addr, ctx=ctx)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True  # refused during the handshake (TLS 1.2)
    try:
        data, corr = conn.frame(18, 0, b"")
        conn.send_raw(data)
        conn.read_response(corr)
        return False
    except (Closed, ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    finally:
        conn.close()


def main(c):
    addr = c.listeners["mtls"]
    good = {"security.protocol": "ssl", "ssl.ca.location": c.pki["CA"],
            "ssl.certificate.location": c.pki["CLIENT_CERT"],
            "ssl.key.location": c.pki["CLIENT_KEY"]}
    seclib.kcat_roundtrip(addr, good, "mtls-kcat", 1000)
    seclib.confluent_roundtrip(addr, good, "mtls-ck", 300)
    seclib.kafka_python_roundtrip(addr, {"security_protocol": "SSL", "ssl_cafile": c.pki["CA"],
                                         "ssl_certfile": c.pki["CLIENT_CERT"],
                                         "ssl_keyfile": c.pki["CLIENT_KEY"]}, "mtls-kp", 200)
    if "User:CN=client,O=Tributary" not in c.log_text():
        raise TestFailure("the certificate's subject is not the connection's principal")
    log("principal: User:CN=client,O=Tributary")

    fails0 = seclib.metric(c, "tributary_tls_handshake_failures_total")
    nocert = {"security.protocol": "ssl", "ssl.ca.location": c.pki["CA"]}
    p = seclib.kcat(["-L", "-b", addr, "-m", "5"], nocert)
    if p.returncode == 0:
        raise TestFailure("kcat without a client certificate was served")
    rogue = dict(nocert, **{"ssl.certificate.location": c.pki["ROGUE_CERT"],
                            "ssl.key.location": c.pki["ROGUE_KEY"]})
    p = seclib.kcat(["-L", "-b", addr, "-m", "5"], rogue)
    if p.returncode == 0:
        raise TestFailure("kcat with a certificate from another CA was served")
    if not raw_refused(c, addr, seclib.tls_context(c)):
        raise TestFailure("a raw client without a certificate got an ApiVersions answer")
    ctx = seclib.tls_context(c)
    ctx.load_cert_chain(c.pki["ROGUE_CERT"], c.pki["ROGUE_KEY"])
    if not raw_refused(c, addr, ctx):
        raise TestFailure("a raw client with another CA's certificate got an answer")
    exp_cert, exp_key = seclib.make_expired_cert(c.pki["DIR"], "expired",
                                                 "/O=Tributary/CN=client")
    p = seclib.kcat(["-L", "-b", addr, "-m", "5"],
                    dict(nocert, **{"ssl.certificate.location": exp_cert,
                                    "ssl.key.location": exp_key}))
    if p.returncode == 0:
        raise TestFailure("kcat with an expired certificate was served")
    ctx = seclib.tls_context(c)
    ctx.load_cert_chain(exp_cert, exp_key)
    if not raw_refused(c, addr, ctx):
        raise TestFailure("a raw client with an expired certificate got an answer")
    if raw_refused(c, addr, seclib.tls_context(c, cert=True)):
        raise TestFailure("a raw client with the right certificate got no answer")
    seclib.wait_for("the refusals to be counted",
                    lambda: seclib.metric(c, "tributary_tls_handshake_failures_total")
                    >= fails0 + 6)
    text = c.log_text()
    if "peer did not return a certificate" not in text or "certificate verify failed" not in text \
            or "certificate has expired" not in text:
        raise TestFailure("the refused handshakes are not logged with their reason")
    log("without a certificate, with another CA's and with an expired one: refused, logged "
        "and counted")


if __name__ == "__main__":
    seclib.require("kcat")
    seclib.run(main, LISTENERS)
