#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""SIGHUP loads a renewed certificate; a broken one is refused.

The ssl listener's cert and key are files the test replaces:
  - new connections see the first certificate; after the files hold a
    renewed certificate (same name, new serial, O=Renewed) and SIGHUP, new
    connections see the renewed one, while a connection opened before the
    reload keeps working;
  - when the files then hold garbage, SIGHUP logs the error and the
    listener keeps serving the renewed certificate.
"""
import importlib
import os
import shutil
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from tributary_harness import TestFailure, log  # noqa: E402

LISTENERS = """
  - name: tls
    address: 127.0.0.1:0
    security: ssl
    tls: {cert: "@DIR@/live.pem", key: "@DIR@/live.key"}
"""


def peer_serial(c):
    host, port = c.listeners["tls"].rsplit(":", 1)
    ctx = seclib.tls_context(c)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            cert = t.getpeercert()
            return cert["serialNumber"], dict(x[0] for x in cert["subject"])


def serial_of(c, pem):
    p = seclib.openssl(c.pki["DIR"], "x509", "-in", pem, "-noout", "-serial")
    return p.stdout.strip().split("=", 1)[1].upper()


def install(c, name):
    d = c.pki["DIR"]
    shutil.copy(os.path.join(d, name + ".pem"), os.path.join(d, "live.pem.new"))
    shutil.copy(os.path.join(d, name + ".key"), os.path.join(d, "live.key.new"))
    os.rename(os.path.join(d, "live.key.new"), os.path.join(d, "live.key"))
    os.rename(os.path.join(d, "live.pem.new"), os.path.join(d, "live.pem"))


def sighup_and_wait(c, marker):
    before = c.log_text().count(marker)
    c.proc.send_signal(signal.SIGHUP)
    seclib.wait_for("SIGHUP to be handled", lambda: c.log_text().count(marker) > before)


def main(c):
    first = serial_of(c, "server.pem")
    serial, subject = peer_serial(c)
    if serial != first:
        raise TestFailure("the listener shows serial %s, not %s" % (serial, first))
    old = seclib.tls_conn(c, c.listeners["tls"])
    old.api_versions()

    seclib.make_cert(c.pki["DIR"], "renewed", "/O=Renewed/CN=localhost", "ca")
    renewed = serial_of(c, "renewed.pem")
    install(c, "renewed")
    sighup_and_wait(c, "listener tls loaded")
    serial, subject = peer_serial(c)
    if serial != renewed or subject.get("organizationName") != "Renewed":
        raise TestFailure("after SIGHUP the listener shows %s %r, not the renewed %s"
                          % (serial, subject, renewed))
    old.api_versions()  # the connection from before the reload goes on
    old.close()
    log("SIGHUP: new connections get the renewed certificate (serial %s); older ones go on"
        % renewed)

    with open(os.path.join(c.pki["DIR"], "live.pem"), "w") as f:
        f.write("not a certificate\n")
    sighup_and_wait(c, "keeps its certificate")
    serial, _ = peer_serial(c)
    if serial != renewed:
        raise TestFailure("a broken certificate file replaced the running one")
    seclib.kcat_roundtrip(c.listeners["tls"], {"security.protocol": "ssl",
                                               "ssl.ca.location": c.pki["CA"]}, "after-hup", 100)
    log("SIGHUP with a broken file: logged, the renewed certificate stays")


if __name__ == "__main__":
    seclib.require("kcat")
    seclib.run(main, LISTENERS, before_start=lambda c: install(c, "server"))
