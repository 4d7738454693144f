#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""SASL over TLS (sasl_ssl) with every client, consumer groups included.

A sasl_ssl listener with PLAIN and SCRAM-SHA-512, the user added with
`tributary-collector --add-user` before the start:
  - kcat with SCRAM-SHA-512 and PLAIN, confluent-kafka (SCRAM-SHA-512, a
    consumer group), kafka-python (SCRAM-SHA-512 and PLAIN, consumer
    groups) and kafkajs 2.2.4 (scram-sha-512 and plain, consumer groups)
    produce and read back every record;
  - a wrong password over TLS is refused (SASL_AUTHENTICATION_FAILED) and
    counted; a client that skips SASL gets nothing but a closed connection
    (raw Metadata over TLS);
  - kafkajs over the plain ssl listener beside it works too.
"""
import importlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Closed  # noqa: E402
from tributary_harness import ROOT, TestFailure, log  # noqa: E402

LISTENERS = """
  - name: sasl_ssl
    address: 127.0.0.1:0
    security: sasl_ssl
    tls: {cert: "@SERVER_CERT@", key: "@SERVER_KEY@"}
    sasl_mechanisms: [SCRAM-SHA-512, PLAIN]
  - name: ssl
    address: 127.0.0.1:0
    security: ssl
    tls: {cert: "@SERVER_CERT@", key: "@SERVER_KEY@"}
"""
JS = os.path.join(ROOT, "tests", "integration", "js")


def props(c, mech, pw="carol-pw"):
    return {"security.protocol": "sasl_ssl", "ssl.ca.location": c.pki["CA"],
            "sasl.mechanisms": mech, "sasl.username": "carol", "sasl.password": pw}


def kp(c, mech):
    return {"security_protocol": "SASL_SSL", "ssl_cafile": c.pki["CA"], "sasl_mechanism": mech,
            "sasl_plain_username": "carol", "sasl_plain_password": "carol-pw"}


def kafkajs(args):
    if not os.path.isdir(os.path.join(JS, "node_modules", "kafkajs")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True,
                           text=True, timeout=600)
        if p.returncode != 0:
            raise TestFailure("npm ci in %s: %s" % (JS, p.stderr[-1000:]))
    p = subprocess.run(["node", os.path.join(JS, "secure.js")] + args, capture_output=True,
                       text=True, timeout=180)
    if p.returncode != 0:
        raise TestFailure("kafkajs %s: %s" % (" ".join(args[:2]), (p.stdout + p.stderr)[-2000:]))
    log(p.stdout.strip())


def main(c):
    addr = c.listeners["sasl_ssl"]
    seclib.kcat_roundtrip(addr, props(c, "SCRAM-SHA-512"), "ss-kcat-scram", 1000)
    seclib.kcat_roundtrip(addr, props(c, "PLAIN"), "ss-kcat-plain", 1000)
    seclib.confluent_roundtrip(addr, props(c, "SCRAM-SHA-512"), "ss-ck", 500)
    seclib.kafka_python_roundtrip(addr, kp(c, "SCRAM-SHA-512"), "ss-kp-scram", 300)
    seclib.kafka_python_roundtrip(addr, kp(c, "PLAIN"), "ss-kp-plain", 300)
    kafkajs([addr, "ss-js-scram", "300", c.pki["CA"], "scram-sha-512", "carol", "carol-pw"])
    kafkajs([addr, "ss-js-plain", "300", c.pki["CA"], "plain", "carol", "carol-pw"])
    kafkajs([c.listeners["ssl"], "ssl-js", "300", c.pki["CA"]])

    fails0 = seclib.metric(c, "tributary_sasl_authentication_failures_total")
    p = seclib.kcat(["-L", "-b", addr, "-m", "5"], props(c, "SCRAM-SHA-512", "nope"))
    if p.returncode == 0 or b"Authentication failed" not in p.stderr:
        raise TestFailure("a wrong password over TLS: exit %d, %s" % (p.returncode, p.stderr))
    seclib.wait_for("the failure to be counted",
                    lambda: seclib.metric(c, "tributary_sasl_authentication_failures_total")
                    > fails0)
    conn = seclib.tls_conn(c, addr)
    data, corr = conn.frame(3, 1, seclib.s32(-1))
    conn.send_raw(data)
    try:
        conn.read_response(corr)
        raise TestFailure("Metadata over TLS without SASL was answered")
    except Closed:
        pass
    conn.close()
    log("a wrong password and a client skipping SASL: refused")


if __name__ == "__main__":
    seclib.require("kcat", "node", "npm")
    seclib.run(main, LISTENERS, users=[("carol", "carol-pw", "SCRAM-SHA-512")])
