#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""SASL on a sasl_plaintext listener: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.

Users are added before the start with `tributary-collector --add-user`
(alice: both SCRAM mechanisms; bob: SCRAM-SHA-256 only).
  - kcat with each mechanism, confluent-kafka (SCRAM-SHA-256, a consumer
    group) and kafka-python (SCRAM-SHA-512 and PLAIN, consumer groups)
    produce and consume; PLAIN is checked against the SCRAM credentials
    (bob, who has only SCRAM-SHA-256, logs in with PLAIN too);
  - a wrong password, an unknown user and a user without the mechanism's
    credential are refused, logged with the user's name and counted
    (tributary_sasl_authentication_failures_total);
  - raw frames: before authenticating, ApiVersions is answered but Metadata
    closes the connection (counted in tributary_unauthenticated_requests_total);
    SaslHandshake lists the listener's mechanisms, refuses GSSAPI
    (UNSUPPORTED_SASL_MECHANISM) and closes; SaslAuthenticate without a
    handshake gets ILLEGAL_SASL_STATE and a close; a wrong PLAIN password
    gets SASL_AUTHENTICATION_FAILED and a close; SaslHandshake v0 with a
    bare PLAIN token logs in (an empty token answers) and Metadata then
    works; SaslHandshake and SaslAuthenticate on the plaintext listener get
    ILLEGAL_SASL_STATE and the connection stays.
"""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Closed, Conn, nbytes, string  # noqa: E402
from tributary_harness import TestFailure, log  # noqa: E402

LISTENERS = """
  - name: sasl
    address: 127.0.0.1:0
    security: sasl_plaintext
    sasl_mechanisms: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
"""
USERS = [("alice", "alice-secret", "SCRAM-SHA-512"), ("alice", "alice-secret", "SCRAM-SHA-256"),
         ("bob", "bob secret", "SCRAM-SHA-256")]


def sasl(mech, user, pw):
    return {"security.protocol": "sasl_plaintext", "sasl.mechanisms": mech,
            "sasl.username": user, "sasl.password": pw}


def kp(mech, user, pw):
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mech,
            "sasl_plain_username": user, "sasl_plain_password": pw}


def handshake(conn, mech, version=1):
    r = conn.call(17, version, string(mech))
    return r.i16(), r.array(r.string)


def authenticate(conn, token):
    r = conn.call(36, 0, nbytes(token))
    return r.i16(), r.string(), r.bytes_()


def expect_closed(conn, what):
    if not seclib.closed(conn):
        raise TestFailure("%s: the connection stayed open" % what)


def main(c):
    addr = c.listeners["sasl"]
    for mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        seclib.kcat_roundtrip(addr, sasl(mech, "alice", "alice-secret"), "kcat-" + mech.lower(),
                              500)
    seclib.kcat_roundtrip(addr, sasl("PLAIN", "bob", "bob secret"), "kcat-bob", 100)
    seclib.confluent_roundtrip(addr, sasl("SCRAM-SHA-256", "bob", "bob secret"), "ck-scram", 300)
    seclib.kafka_python_roundtrip(addr, kp("SCRAM-SHA-512", "alice", "alice-secret"), "kp-scram")
    seclib.kafka_python_roundtrip(addr, kp("PLAIN", "alice", "alice-secret"), "kp-plain")
    ok0 = seclib.metric(c, "tributary_sasl_authentications_total")
    if ok0 < 8:
        raise TestFailure("only %d logins counted" % ok0)

    # Refused logins.
    fails0 = seclib.metric(c, "tributary_sasl_authentication_failures_total")
    refused = [("SCRAM-SHA-512", "alice", "wrong"), ("SCRAM-SHA-256", "alice", "wrong"),
               ("PLAIN", "alice", "wrong"), ("SCRAM-SHA-256", "mallory", "x"),
               ("PLAIN", "mallory", "x"), ("SCRAM-SHA-512", "bob", "bob secret")]
    for mech, user, pw in refused:
        p = seclib.kcat(["-L", "-b", addr, "-m", "5"], sasl(mech, user, pw))
        err = p.stderr.decode(errors="replace")
        if p.returncode == 0 or "Authentication failed" not in err:
            raise TestFailure("%s login of %s with %r: exit %d, %s"
                              % (mech, user, pw, p.returncode, err[-500:]))
    seclib.wait_for("the refused logins to be counted",
                    lambda: seclib.metric(c, "tributary_sasl_authentication_failures_total")
                    >= fails0 + len(refused))
    text = c.log_text()
    for frag in ("login failed on listener sasl for user 'alice': wrong password",
                 "login failed on listener sasl for user 'alice': invalid credentials",
                 "login failed on listener sasl for user 'mallory': unknown user",
                 "SCRAM-SHA-512 login failed on listener sasl for user 'bob': unknown user"):
        if frag not in text:
            raise TestFailure("not logged: %s" % frag)
    log("%d refused logins: refused, logged and counted" % len(refused))

    # Raw frames before authenticating.
    una0 = seclib.metric(c, "tributary_unauthenticated_requests_total")
    conn = Conn(addr)
    apis = conn.api_versions()
    for key in (17, 36, 50, 51):
        if key not in apis:
            raise TestFailure("ApiVersions does not list API key %d" % key)
    data, corr = conn.frame(3, 1, seclib.s32(-1))
    conn.send_raw(data)
    try:
        conn.read_response(corr)
        raise TestFailure("Metadata before authenticating was answered")
    except Closed:
        pass
    conn.close()
    if seclib.metric(c, "tributary_unauthenticated_requests_total") != una0 + 1:
        raise TestFailure("the unauthenticated request was not counted")
    log("before authenticating: ApiVersions answered, Metadata closes the connection")

    conn = Conn(addr)
    err, mechs = handshake(conn, "GSSAPI")
    if err != 33 or mechs != ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
        raise TestFailure("SaslHandshake GSSAPI: error %d, mechanisms %r" % (err, mechs))
    expect_closed(conn, "an unsupported mechanism")

    conn = Conn(addr)
    err, msg, _ = authenticate(conn, b"\0alice\0alice-secret")
    if err != 34:
        raise TestFailure("SaslAuthenticate without a handshake: error %d" % err)
    expect_closed(conn, "SaslAuthenticate without a handshake")

    conn = Conn(addr)
    err, mechs = handshake(conn, "PLAIN")
    if err != 0:
        raise TestFailure("SaslHandshake PLAIN: error %d" % err)
    err, msg, _ = authenticate(conn, b"\0alice\0not-it")
    if err != 58 or "PLAIN" not in (msg or ""):
        raise TestFailure("a wrong PLAIN password: error %d (%r)" % (err, msg))
    expect_closed(conn, "a failed login")

    conn = Conn(addr)
    err, mechs = handshake(conn, "PLAIN", version=0)
    if err != 0:
        raise TestFailure("SaslHandshake v0 PLAIN: error %d" % err)
    token = b"\0alice\0alice-secret"
    conn.send_raw(seclib.s32(len(token)) + token)
    size = int.from_bytes(conn.recv_exact(4), "big")
    if size != 0:
        raise TestFailure("a bare PLAIN token answered %d bytes, not an empty token" % size)
    topics, _controller = conn.metadata(["kcat-plain"])
    if topics.get("kcat-plain", (-1,))[0] != 0:
        raise TestFailure("Metadata after a v0 login: %r" % (topics,))
    conn.close()
    log("SaslHandshake v0 with a bare PLAIN token: logged in, Metadata answered")

    conn = Conn(c.bootstrap)
    err, mechs = handshake(conn, "PLAIN")
    if err != 34 or mechs:
        raise TestFailure("SaslHandshake on the plaintext listener: error %d, %r" % (err, mechs))
    err, _, _ = authenticate(conn, b"\0alice\0alice-secret")
    if err != 34:
        raise TestFailure("SaslAuthenticate on the plaintext listener: error %d" % err)
    conn.api_versions()  # the connection stays, as on a Kafka PLAINTEXT listener
    conn.close()


if __name__ == "__main__":
    seclib.require("kcat")
    seclib.run(main, LISTENERS, users=USERS)
