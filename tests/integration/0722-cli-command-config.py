#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The tributary CLI over TLS and SASL: --command-config FILE.

A collector with the authorizer on (super user User:admin) and two
listeners: sasl_ssl (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and
sasl_plaintext (PLAIN); nothing is done on the harness's plaintext
listener, whose User:ANONYMOUS has no rights.

  - admin (SCRAM-SHA-512 over TLS, librdkafka's property names) creates
    topics, lists them, adds user bob with `users set`, lists users, grants
    alice READ and WRITE on cc.orders and READ on group cc-g with `acls
    create` and lists the ACLs; `cluster describe` and `groups list` work
    over the same connection;
  - alice (SCRAM-SHA-256 over TLS, Kafka's sasl.jaas.config form) produces
    100 lines to cc.orders and consumes them back in group cc-g; her
    `topics list` shows cc.orders and not cc.secret;
  - alice with PLAIN over sasl_plaintext cannot produce to cc.secret
    (exit 1, TOPIC_AUTHORIZATION_FAILED); bob, added online, logs in with
    SCRAM-SHA-512 and sees no topic (no ACLs);
  - refused: a wrong password (exit 1, SASL_AUTHENTICATION_FAILED, named in
    the message), a mechanism the listener does not offer (exit 3, the
    offered ones named), the TLS listener without --command-config (exit 3),
    a CA that did not sign the broker's certificate (exit 3, the
    certificate check's verdict), a certificate for another host (exit 3,
    unless ssl.endpoint.identification.algorithm is empty), TLS to the
    plaintext listener (exit 3, "is it a TLS listener?"), a bad
    security.protocol (exit 2, FILE:LINE); an unknown property is a warning.
"""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from tributary_harness import CLI, TestFailure, log  # noqa: E402

import subprocess  # noqa: E402

LISTENERS = """
  - name: sasl_ssl
    address: 127.0.0.1:0
    security: sasl_ssl
    tls: {cert: "@SERVER_CERT@", key: "@SERVER_KEY@"}
    sasl_mechanisms: [SCRAM-SHA-512, SCRAM-SHA-256, PLAIN]
  - name: sasl_plain
    address: 127.0.0.1:0
    security: sasl_plaintext
    sasl_mechanisms: [PLAIN]
  - name: elsewhere
    address: 127.0.0.1:0
    security: ssl
    tls: {cert: "@DIR@/elsewhere.pem", key: "@DIR@/elsewhere.key"}
"""
AUTHORIZER = """
authorizer:
  enabled: true
  super_users: [User:admin]
"""
USERS = [("admin", "admin-pw", "SCRAM-SHA-512"), ("alice", "alice-pw", "SCRAM-SHA-256")]
N = 100


def props(c, name, lines):
    path = os.path.join(c.tmp, name + ".properties")
    with open(path, "w") as f:
        f.write("# %s\n\n" % name + "\n".join(lines) + "\n")
    return path


def cli(cfg, addr, *args, input=None, want=0):
    cmd = [CLI]
    if cfg:
        cmd += ["--command-config", cfg]
    cmd += ["-b", addr, "--request-timeout-ms", "15000"] + list(args)
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120)
    if want is not None and p.returncode != want:
        raise TestFailure("tributary %s: exit %d (expected %d): %s%s"
                          % (" ".join(args), p.returncode, want, p.stdout[-500:], p.stderr))
    return p


def main(c):
    tls = c.listeners["sasl_ssl"]
    plain = c.listeners["sasl_plain"]
    ca = c.pki["CA"]
    admin = props(c, "admin", ["security.protocol=sasl_ssl", "ssl.ca.location=" + ca,
                               "sasl.mechanisms=SCRAM-SHA-512", "sasl.username=admin",
                               "sasl.password=admin-pw"])
    alice = props(c, "alice", [
        "security.protocol = SASL_SSL", "ssl.truststore.type = PEM",
        "ssl.truststore.location = " + ca, "sasl.mechanism = SCRAM-SHA-256",
        'sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="alice" password="alice-pw";'])

    # admin: topics, users, ACLs.
    cli(admin, tls, "topics", "create", "--topic", "cc.orders", "--partitions", "2")
    cli(admin, tls, "topics", "create", "--topic", "cc.secret", "--partitions", "1")
    listed = cli(admin, tls, "topics", "list").stdout.split()
    if "cc.orders" not in listed or "cc.secret" not in listed:
        raise TestFailure("admin's topics list: %r" % listed)
    cli(admin, tls, "users", "set", "bob", "--mechanism", "SCRAM-SHA-512", "--iterations", "4096",
        input="bob-pw\n")
    users = cli(admin, tls, "users", "list").stdout
    if "bob" not in users or "alice" not in users:
        raise TestFailure("admin's users list: %r" % users)
    cli(admin, tls, "acls", "create", "--topic", "cc.orders", "--allow-principal", "User:alice",
        "--operation", "read", "--operation", "write")
    cli(admin, tls, "acls", "create", "--group", "cc-g", "--allow-principal", "User:alice",
        "--operation", "read")
    acls = sorted(cli(admin, tls, "acls", "list").stdout.splitlines())
    want = sorted(["Topic\tLiteral\tcc.orders\tUser:alice\t*\tRead\tAllow",
                   "Topic\tLiteral\tcc.orders\tUser:alice\t*\tWrite\tAllow",
                   "Group\tLiteral\tcc-g\tUser:alice\t*\tRead\tAllow"])
    if acls != want:
        raise TestFailure("acls list: %r" % acls)
    cli(admin, tls, "cluster", "describe")
    cli(admin, tls, "groups", "list")
    log("admin over SASL_SSL/SCRAM-SHA-512: topics, users, acls, cluster, groups")

    # alice: produce and consume under her ACLs.
    lines = "".join("order-%d\n" % i for i in range(N))
    cli(alice, tls, "produce", "--topic", "cc.orders", input=lines)
    got = cli(alice, tls, "consume", "--topic", "cc.orders", "--group", "cc-g",
              "--from-beginning", "--max", str(N), "--timeout-ms", "30000").stdout
    if sorted(got.splitlines()) != sorted(lines.splitlines()):
        raise TestFailure("alice consumed %d of %d records" % (len(got.splitlines()), N))
    listed = cli(alice, tls, "topics", "list").stdout.split()
    if "cc.orders" not in listed or "cc.secret" in listed:
        raise TestFailure("alice's topics list: %r" % listed)
    log("alice over SASL_SSL/SCRAM-SHA-256 (sasl.jaas.config): %d records through cc.orders "
        "with group cc-g; she sees cc.orders only" % N)

    alice_plain = props(c, "alice-plain", ["security.protocol=SASL_PLAINTEXT",
                                           "sasl.mechanism=PLAIN", "sasl.username=alice",
                                           "sasl.password=alice-pw"])
    p = cli(alice_plain, plain, "produce", "--topic", "cc.secret", input="x\n", want=1)
    if "TOPIC_AUTHORIZATION_FAILED" not in p.stderr:
        raise TestFailure("alice producing to cc.secret: %s" % p.stderr)
    cli(alice_plain, plain, "produce", "--topic", "cc.orders", input="over-plain\n")
    log("alice over SASL_PLAINTEXT/PLAIN: cc.secret refused, cc.orders written")

    bob = props(c, "bob", ["security.protocol=SASL_SSL", "ssl.ca.location=" + ca,
                           "sasl.mechanism=SCRAM-SHA-512", "sasl.username=bob",
                           "sasl.password=bob-pw"])
    listed = cli(bob, tls, "topics", "list").stdout.split()
    if listed:
        raise TestFailure("bob (no ACLs) sees topics: %r" % listed)
    log("bob, added with users set over TLS, logs in and sees no topic")

    # Refusals.
    fails0 = seclib.metric(c, "tributary_sasl_authentication_failures_total")
    wrong = props(c, "wrong", ["security.protocol=SASL_SSL", "ssl.ca.location=" + ca,
                               "sasl.mechanism=SCRAM-SHA-512", "sasl.username=admin",
                               "sasl.password=not-the-password"])
    p = cli(wrong, tls, "topics", "list", want=1)
    if "SASL_AUTHENTICATION_FAILED" not in p.stderr or "admin" not in p.stderr or p.stdout:
        raise TestFailure("a wrong password: %r %r" % (p.stdout, p.stderr))
    log("a wrong password: %s" % p.stderr.strip())
    seclib.wait_for("the failure to be counted",
                    lambda: seclib.metric(c, "tributary_sasl_authentication_failures_total")
                    > fails0)
    wrong_plain = props(c, "wrong-plain", ["security.protocol=SASL_PLAINTEXT",
                                           "sasl.mechanism=PLAIN", "sasl.username=alice",
                                           "sasl.password=nope"])
    p = cli(wrong_plain, plain, "topics", "list", want=1)
    if "SASL_AUTHENTICATION_FAILED" not in p.stderr:
        raise TestFailure("a wrong PLAIN password: %r" % p.stderr)

    scram_on_plain = props(c, "scram-on-plain", ["security.protocol=SASL_PLAINTEXT",
                                                 "sasl.mechanism=SCRAM-SHA-512",
                                                 "sasl.username=alice", "sasl.password=x"])
    p = cli(scram_on_plain, plain, "topics", "list", want=3)
    if "does not offer SASL mechanism SCRAM-SHA-512" not in p.stderr or "PLAIN" not in p.stderr:
        raise TestFailure("a mechanism the listener does not offer: %r" % p.stderr)
    log("a mechanism not offered: %s" % p.stderr.strip())

    p = cli(None, tls, "topics", "list", want=3)
    log("the TLS listener without --command-config: %s" % p.stderr.strip())

    rogue = props(c, "rogue", ["security.protocol=SASL_SSL", "ssl.ca.location=" + c.pki["ROGUE_CA"],
                               "sasl.mechanism=SCRAM-SHA-512", "sasl.username=admin",
                               "sasl.password=admin-pw"])
    p = cli(rogue, tls, "topics", "list", want=3)
    if "certificate" not in p.stderr or "TLS handshake" not in p.stderr:
        raise TestFailure("a CA that did not sign the broker's certificate: %r" % p.stderr)
    log("another CA: %s" % p.stderr.strip())

    elsewhere = c.listeners["elsewhere"]
    ssl_only = ["security.protocol=SSL", "ssl.ca.location=" + ca]
    p = cli(props(c, "ssl", ssl_only), elsewhere, "topics", "list", want=3)
    if "IP address mismatch" not in p.stderr:
        raise TestFailure("a certificate for another host: %r" % p.stderr)
    log("a certificate for another host: %s" % p.stderr.strip())
    cli(props(c, "ssl-nohost", ssl_only + ["ssl.endpoint.identification.algorithm="]), elsewhere,
        "topics", "list")
    log("... accepted with ssl.endpoint.identification.algorithm empty")

    p = cli(props(c, "ssl-to-plain", ssl_only), c.listeners["plaintext"], "topics", "list",
            want=3)
    if "TLS handshake" not in p.stderr or "is it a TLS listener?" not in p.stderr:
        raise TestFailure("TLS to the plaintext listener: %r" % p.stderr)
    log("TLS to the plaintext listener: %s" % p.stderr.strip())

    bad = props(c, "bad", ["security.protocol=TLS"])
    p = cli(bad, tls, "topics", "list", want=2)
    if bad + ":3:" not in p.stderr or "security.protocol" not in p.stderr:
        raise TestFailure("a bad security.protocol: %r" % p.stderr)
    nomech = props(c, "nomech", ["security.protocol=SASL_SSL", "sasl.username=a"])
    p = cli(nomech, tls, "topics", "list", want=2)
    if "sasl.mechanism" not in p.stderr:
        raise TestFailure("SASL without a mechanism: %r" % p.stderr)
    unknown = props(c, "unknown", ["security.protocol=SASL_SSL", "ssl.ca.location=" + ca,
                                   "sasl.mechanism=SCRAM-SHA-512", "sasl.username=admin",
                                   "sasl.password=admin-pw", "client.dns.lookup=use_all_dns_ips"])
    p = cli(unknown, tls, "topics", "list")
    if "unknown property 'client.dns.lookup'" not in p.stderr or "cc.orders" not in p.stdout:
        raise TestFailure("an unknown property: %r %r" % (p.stdout, p.stderr))
    log("refusals: wrong passwords, a mechanism not offered, no TLS, another CA, bad files")


def before_start(c):
    seclib.make_cert(c.pki["DIR"], "elsewhere", "/CN=elsewhere.example", "ca",
                     san="DNS:elsewhere.example")


if __name__ == "__main__":
    seclib.run(main, LISTENERS, users=USERS, extra_yaml=AUTHORIZER, before_start=before_start)
