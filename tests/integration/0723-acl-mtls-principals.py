#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ACLs on mTLS principals, with the CLI, confluent-kafka, kafka-python and kafkajs.

An mTLS listener (client_auth: required) and a sasl_ssl listener for the
super user admin; the authorizer is on. A connection's principal on the
mTLS listener is its certificate's subject: User:CN=client,O=Tributary for
the client certificate, User:CN=mallory,O=Tributary for another one from
the same CA.

  - admin (the CLI over SASL_SSL) creates mt.ok.{cli,ck,kp,js} and
    mt.other and grants User:CN=client,O=Tributary READ and WRITE on topic
    prefix mt.ok. and READ on group prefix mt.;
  - with the client certificate: the CLI (--command-config with
    ssl.certificate.location) produces and consumes mt.ok.cli in a group,
    sees the mt.ok. topics and not mt.other, and cannot produce to
    mt.other (TOPIC_AUTHORIZATION_FAILED); confluent-kafka, kafka-python and
    kafkajs produce and consume their mt.ok. topics with consumer groups;
  - with mallory's certificate, which the TLS listener accepts: the CLI
    sees no topic and cannot produce (TOPIC_AUTHORIZATION_FAILED),
    kafka-python's producer cannot send (its Metadata requests are refused
    and counted) and kafkajs fails; nothing they sent was written.
"""
import importlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from tributary_harness import CLI, ROOT, TestFailure, log  # noqa: E402

LISTENERS = """
  - name: mtls
    address: 127.0.0.1:0
    security: ssl
    tls:
      cert: "@SERVER_CERT@"
      key: "@SERVER_KEY@"
      ca: "@CA@"
      client_auth: required
  - name: sasl_ssl
    address: 127.0.0.1:0
    security: sasl_ssl
    tls: {cert: "@SERVER_CERT@", key: "@SERVER_KEY@"}
    sasl_mechanisms: [SCRAM-SHA-512]
"""
AUTHORIZER = """
authorizer:
  enabled: true
  super_users: [User:admin]
"""
PRINCIPAL = "User:CN=client,O=Tributary"
OK_TOPICS = ["mt.ok.cli", "mt.ok.ck", "mt.ok.kp", "mt.ok.js"]
JS = os.path.join(ROOT, "tests", "integration", "js")


def props(c, name, lines):
    path = os.path.join(c.tmp, name + ".properties")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def cli(cfg, addr, *args, input=None, want=0):
    cmd = [CLI, "--command-config", cfg, "-b", addr, "--request-timeout-ms", "15000"]
    p = subprocess.run(cmd + list(args), input=input, capture_output=True, text=True,
                       timeout=120)
    if p.returncode != want:
        raise TestFailure("tributary %s: exit %d (expected %d): %s"
                          % (" ".join(args), p.returncode, want, p.stderr))
    return p


def kafkajs(args, cert, key):
    if not os.path.isdir(os.path.join(JS, "node_modules", "kafkajs")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True,
                           text=True, timeout=600)
        if p.returncode != 0:
            raise TestFailure("npm ci in %s: %s" % (JS, p.stderr[-1000:]))
    env = dict(os.environ, CLIENT_CERT=cert, CLIENT_KEY=key)
    return subprocess.run(["node", os.path.join(JS, "secure.js")] + args, capture_output=True,
                          text=True, timeout=180, env=env)


def main(c):
    mtls = c.listeners["mtls"]
    tls = c.listeners["sasl_ssl"]
    ca = c.pki["CA"]
    mal_cert, mal_key = seclib.make_cert(c.pki["DIR"], "mallory", "/O=Tributary/CN=mallory", "ca",
                                         san="DNS:mallory")
    admin = props(c, "admin", ["security.protocol=SASL_SSL", "ssl.ca.location=" + ca,
                               "sasl.mechanism=SCRAM-SHA-512", "sasl.username=admin",
                               "sasl.password=admin-pw"])
    client = props(c, "client", ["security.protocol=SSL", "ssl.ca.location=" + ca,
                                 "ssl.certificate.location=" + c.pki["CLIENT_CERT"],
                                 "ssl.key.location=" + c.pki["CLIENT_KEY"]])
    mallory = props(c, "mallory", ["security.protocol=SSL", "ssl.ca.location=" + ca,
                                   "ssl.certificate.location=" + mal_cert,
                                   "ssl.key.location=" + mal_key])

    for t in OK_TOPICS + ["mt.other"]:
        cli(admin, tls, "topics", "create", "--topic", t, "--partitions", "2")
    cli(admin, tls, "acls", "create", "--topic", "mt.ok.", "--resource-pattern-type", "prefixed",
        "--allow-principal", PRINCIPAL, "--operation", "read", "--operation", "write")
    cli(admin, tls, "acls", "create", "--group", "mt.", "--resource-pattern-type", "prefixed",
        "--allow-principal", PRINCIPAL, "--operation", "read")
    listing = cli(admin, tls, "acls", "list", "--principal", PRINCIPAL).stdout
    if listing.count(PRINCIPAL) != 3:
        raise TestFailure("acls list --principal %s: %r" % (PRINCIPAL, listing))
    log("admin granted %s READ+WRITE on topics mt.ok.*, READ on groups mt.*" % PRINCIPAL)

    # The client certificate's subject is allowed.
    lines = "".join("cert-%d\n" % i for i in range(50))
    cli(client, mtls, "produce", "--topic", "mt.ok.cli", input=lines)
    got = cli(client, mtls, "consume", "--topic", "mt.ok.cli", "--group", "mt.cli",
              "--from-beginning", "--max", "50", "--timeout-ms", "30000").stdout
    if sorted(got.splitlines()) != sorted(lines.splitlines()):
        raise TestFailure("the CLI with the client certificate read %d of 50 records"
                          % len(got.splitlines()))
    listed = cli(client, mtls, "topics", "list").stdout.split()
    if sorted(listed) != sorted(OK_TOPICS):
        raise TestFailure("topics the client certificate sees: %r" % listed)
    p = cli(client, mtls, "produce", "--topic", "mt.other", input="x\n", want=1)
    if "TOPIC_AUTHORIZATION_FAILED" not in p.stderr:
        raise TestFailure("the client certificate producing to mt.other: %r" % p.stderr)
    log("CLI with %s: 50 records through mt.ok.cli in group mt.cli; mt.other refused"
        % PRINCIPAL)
    good = {"security.protocol": "ssl", "ssl.ca.location": ca,
            "ssl.certificate.location": c.pki["CLIENT_CERT"],
            "ssl.key.location": c.pki["CLIENT_KEY"]}
    seclib.confluent_roundtrip(mtls, good, "mt.ok.ck", 200, group="mt.ck")
    kp_good = {"security_protocol": "SSL", "ssl_cafile": ca, "ssl_certfile": c.pki["CLIENT_CERT"],
               "ssl_keyfile": c.pki["CLIENT_KEY"]}
    seclib.kafka_python_roundtrip(mtls, kp_good, "mt.ok.kp", 100)  # group mt.ok.kp-kp
    p = kafkajs([mtls, "mt.ok.js", "100", ca], c.pki["CLIENT_CERT"], c.pki["CLIENT_KEY"])
    if p.returncode != 0:
        raise TestFailure("kafkajs with the client certificate: %s" % (p.stdout + p.stderr))
    log(p.stdout.strip())

    # Another certificate of the same CA: served, and refused by the ACLs.
    if cli(mallory, mtls, "topics", "list").stdout.split():
        raise TestFailure("mallory's certificate sees topics")
    p = cli(mallory, mtls, "produce", "--topic", "mt.ok.cli", input="mallory\n", want=1)
    if "TOPIC_AUTHORIZATION_FAILED" not in p.stderr:
        raise TestFailure("mallory's certificate producing: %r" % p.stderr)
    log("CLI with User:CN=mallory,O=Tributary: no topic listed, produce refused")

    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
    kp_mal = dict(kp_good, ssl_certfile=mal_cert, ssl_keyfile=mal_key)
    refused0 = seclib.metric(c, "tributary_authorization_failures_total")
    prod = KafkaProducer(bootstrap_servers=mtls, max_block_ms=5000, **kp_mal)
    try:
        prod.send("mt.ok.kp", value=b"mallory-kp").get(timeout=30)
        raise TestFailure("kafka-python with mallory's certificate produced")
    except (TopicAuthorizationFailedError, KafkaTimeoutError) as e:
        # kafka-python 2.0.2 asks for the topic's metadata again and again (each
        # answered TOPIC_AUTHORIZATION_FAILED) until max_block_ms.
        log("kafka-python with mallory's certificate: %s" % type(e).__name__)
    finally:
        prod.close(timeout=10)
    if seclib.metric(c, "tributary_authorization_failures_total") <= refused0:
        raise TestFailure("kafka-python's refused requests were not counted")

    p = kafkajs([mtls, "mt.ok.js", "5", ca], mal_cert, mal_key)
    if p.returncode == 0:
        raise TestFailure("kafkajs with mallory's certificate produced and consumed")
    if "authoriz" not in (p.stdout + p.stderr).lower():
        raise TestFailure("kafkajs with mallory's certificate failed, not on an ACL: %s"
                          % (p.stdout + p.stderr))
    log("kafkajs with mallory's certificate: %s" % (p.stdout + p.stderr).strip()[:200])

    for t, n in (("mt.ok.cli", 50), ("mt.ok.kp", 100), ("mt.ok.js", 100)):
        held = cli(admin, tls, "consume", "--topic", t, "--from-beginning",
                   "--exit-at-end").stdout.splitlines()
        if len(held) != n:
            raise TestFailure("%s holds %d records, %d were written with the client "
                              "certificate" % (t, len(held), n))
    log("mallory's records were not written")


if __name__ == "__main__":
    seclib.require("node", "npm")
    seclib.run(main, LISTENERS, users=[("admin", "admin-pw", "SCRAM-SHA-512")],
               extra_yaml=AUTHORIZER)
