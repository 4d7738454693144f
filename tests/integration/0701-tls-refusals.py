#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""TLS listener: what it refuses.

  - TLS 1.0 and 1.1 (openssl s_client -tls1 / -tls1_1, with the client's
    own security level lowered so that it offers them) fail the handshake,
    and TLS 1.2 with a suite without forward secrecy or AEAD (AES128-SHA,
    ECDHE-RSA-AES128-SHA) too, while TLS 1.2 and 1.3 with their defaults
    connect;
  - a plaintext Kafka client on the TLS listener (an ApiVersions frame
    sent in the clear) gets no Kafka answer and a closed connection;
  - a client that verifies the collector against another CA refuses it;
  - each refused handshake is logged and counted
    (tributary_tls_handshake_failures_total), and the listener keeps
    serving: kcat still round-trips over TLS afterwards;
  - `--check-config` loads the TLS files: a missing key or a key that is
    not the certificate's is an error at the listener's tls key (exit 2).
"""
import importlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Conn  # noqa: E402
from tributary_harness import COLLECTOR, TestFailure, log  # noqa: E402

LISTENERS = """
  - name: tls
    address: 127.0.0.1:0
    security: ssl
    tls: {cert: "@SERVER_CERT@", key: "@SERVER_KEY@"}
"""


def s_client(c, addr, *args):
    """True when openssl s_client completes a handshake with the listener."""
    p = subprocess.run(["openssl", "s_client", "-connect", addr, "-CAfile", c.pki["CA"],
                        "-verify_return_error", "-servername", "localhost"] + list(args),
                       input=b"", capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace")
    ok = p.returncode == 0 and "Cipher is (NONE)" not in out and "Cipher is" in out
    return ok, out


def main(c):
    tls = c.listeners["tls"]
    for args, want in ((["-tls1_2"], True), (["-tls1_3"], True), (["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], False),
                       (["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"], False),
                       (["-tls1_2", "-cipher", "AES128-SHA"], False),
                       (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"], False),
                       (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], True)):
        fails0 = seclib.metric(c, "tributary_tls_handshake_failures_total")
        ok, out = s_client(c, tls, *args)
        if ok != want:
            raise TestFailure("openssl s_client %s: handshake %s, expected %s:\n%s"
                              % (" ".join(args), "done" if ok else "refused",
                                 "done" if want else "refused", out[-2000:]))
        if not want:
            seclib.wait_for("the refused handshake to be counted",
                            lambda: seclib.metric(c, "tributary_tls_handshake_failures_total")
                            > fails0)
        log("s_client %s: %s" % (" ".join(args), "connected" if ok else "refused"))

    # A plaintext Kafka client on the TLS listener.
    conn = Conn(tls)
    data, corr = conn.frame(18, 0, b"")
    conn.send_raw(data)
    got = b""
    conn.sock.settimeout(10)
    try:
        while True:
            chunk = conn.sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    if len(got) >= 8 and got[4:8] == corr.to_bytes(4, "big"):
        raise TestFailure("the TLS listener answered a plaintext ApiVersions")
    log("a plaintext client on the TLS listener: %d bytes (a TLS alert at most), then closed"
        % len(got))
    conn.close()

    # The collector checked against another CA.
    p = seclib.kcat(["-L", "-b", tls, "-m", "5"], {"security.protocol": "ssl",
                                                     "ssl.ca.location": c.pki["ROGUE_CA"]})
    if p.returncode == 0:
        raise TestFailure("kcat trusting another CA accepted the collector's certificate")
    log("kcat with another CA: refused (%s)"
        % p.stderr.decode(errors="replace").strip().splitlines()[-1][:120])
    if "TLS handshake on listener tls failed" not in c.log_text():
        raise TestFailure("refused handshakes are not logged")
    seclib.kcat_roundtrip(tls, {"security.protocol": "ssl", "ssl.ca.location": c.pki["CA"]},
                          "after", 100)

    text = open(c.config).read()
    p = subprocess.run([COLLECTOR, "-c", c.config, "--check-config"], capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise TestFailure("--check-config of the running configuration: %s" % p.stderr)
    for bad_key, why in ((c.pki["DIR"] + "/missing.key", "No such file"),
                         (c.pki["CLIENT_KEY"], "key values mismatch")):
        bad = os.path.join(c.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(text.replace(c.pki["SERVER_KEY"], bad_key))
        p = subprocess.run([COLLECTOR, "-c", bad, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 2 or "bad.yaml:6:10:" not in p.stderr or why not in p.stderr:
            raise TestFailure("--check-config with tls.key %s: exit %d, %s"
                              % (bad_key, p.returncode, p.stderr))
    log("--check-config: a missing or mismatched tls.key is an error at its listener")


if __name__ == "__main__":
    seclib.require("kcat")
    seclib.run(main, LISTENERS)
