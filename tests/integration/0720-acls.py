#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ACLs with Kafka's model, end to end (authorizer.enabled: true).

A SASL listener (PLAIN and SCRAM-SHA-512) beside the harness's plaintext
one; super_users are User:admin and, for the CLI on the plaintext
listener, User:ANONYMOUS.

  - a super user (admin over SCRAM, confluent-kafka) produces without any ACL;
  - alice, without ACLs, is refused in raw frames with Kafka's codes:
    Metadata lists no topic and answers TOPIC_AUTHORIZATION_FAILED (29) for
    one asked for (an unknown one is not auto-created), Produce, Fetch,
    ListOffsets, CreateTopics and DeleteTopics 29, FindCoordinator
    GROUP_AUTHORIZATION_FAILED (30), InitProducerId and DescribeAcls
    CLUSTER_AUTHORIZATION_FAILED (31), FindCoordinator for a transactional
    id TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53);
  - `tributary acls create` grants READ on topic prefix `web.` and group
    prefix `g-`: alice consumes web.access with a confluent-kafka group
    (SCRAM-SHA-512), sees web.access but not db.x in Metadata, still cannot
    produce to it (29);
  - a DENY READ on literal web.access overrides the prefix ALLOW: Fetch 29,
    while DESCRIBE (implied by the ALLOW READ) still lists the topic;
  - mallory with WRITE on prefix `web.` produces to web.access with kcat
    (PLAIN), but can neither read it, create db.x, nor see db.x;
  - `tributary acls list` shows the ACLs; they survive a restart (the
    data dir's acls file, mode 0600), the DENY included; `acls delete`
    removes the DENY and alice reads again;
  - without User:ANONYMOUS among the super users, the CLI on the plaintext
    listener gets CLUSTER_AUTHORIZATION_FAILED (deny by default).
"""
import importlib
import os
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Conn, array, batch, nbytes, s8, s16, s32, string  # noqa: E402
from tributary_harness import TestFailure, log  # noqa: E402

LISTENERS = """
  - name: sasl
    address: 127.0.0.1:0
    security: sasl_plaintext
    sasl_mechanisms: [PLAIN, SCRAM-SHA-512]
"""
AUTHORIZER = """
authorizer:
  enabled: true
  super_users: [User:admin, User:ANONYMOUS]
"""
USERS = [("admin", "admin-pw", "SCRAM-SHA-512"), ("alice", "alice-pw", "SCRAM-SHA-512"),
         ("mallory", "mallory-pw", "SCRAM-SHA-512")]
PW = dict((u, p) for u, p, _ in USERS)
N = 40


def scram(user):
    return {"security.protocol": "sasl_plaintext", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": PW[user]}


def raw(c, user):
    """A raw connection logged in as user with SASL PLAIN (SaslHandshake v1, SaslAuthenticate)."""
    conn = Conn(c.listeners["sasl"])
    r = conn.call(17, 1, string("PLAIN"))
    if r.i16() != 0:
        raise TestFailure("SaslHandshake PLAIN refused")
    r = conn.call(36, 0, nbytes(b"\0%s\0%s" % (user.encode(), PW[user].encode())))
    err = r.i16()
    if err != 0:
        raise TestFailure("%s cannot log in: error %d" % (user, err))
    return conn


def find_coordinator(conn, key, key_type=0):
    r = conn.call(10, 1, string(key) + s8(key_type))
    r.i32()
    return r.i16()


def list_offsets_error(conn, topic):
    """ListOffsets v1 of partition 0 (latest): its error code."""
    body = s32(-1) + array([string(topic) + array([s32(0) + b"\xff" * 8])])
    r = conn.call(2, 1, body)
    out = []
    r.array(lambda: (r.string(), r.array(lambda: out.append((r.i32(), r.i16(), r.i64(),
                                                              r.i64())))))
    return out[0][1]


def create_topic(conn, name):
    """CreateTopics v0: the topic's error code."""
    body = array([string(name) + s32(1) + s16(1) + array([]) + array([])]) + s32(10000)
    r = conn.call(19, 0, body)
    return dict(r.array(lambda: (r.string(), r.i16())))[name]


def delete_topic(conn, name):
    r = conn.call(20, 0, array([string(name)]) + s32(10000))
    return dict(r.array(lambda: (r.string(), r.i16())))[name]


def describe_acls_error(conn):
    """DescribeAcls v1 with a match-everything filter: the top-level error."""
    body = s8(1) + string(None) + s8(1) + string(None) + string(None) + s8(1) + s8(1)
    r = conn.call(29, 1, body)
    r.i32()
    return r.i16()


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: got %r, expected %r" % (what, got, want))
    log("%s: %r" % (what, got))


def consume_group(c, user, topic, group, n):
    """A confluent-kafka group consumer reads n records of topic; the values."""
    from confluent_kafka import Consumer
    cons = Consumer(dict(scram(user), **{"bootstrap.servers": c.listeners["sasl"],
                                         "group.id": group, "auto.offset.reset": "earliest",
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
                raise TestFailure("%s's consumer: %s" % (user, m.error()))
            seen.add(m.value())
        cons.commit(asynchronous=False)
    finally:
        cons.close()
    if len(seen) != n:
        raise TestFailure("%s's group %s read %d of %d records" % (user, group, len(seen), n))
    return seen


def main(c):
    c.cli("topics", "create", "--topic", "web.access", "--partitions", "1")
    c.cli("topics", "create", "--topic", "db.x", "--partitions", "1")

    # A super user needs no ACL.
    from confluent_kafka import Producer
    p = Producer(dict(scram("admin"), **{"bootstrap.servers": c.listeners["sasl"]}))
    for i in range(N):
        p.produce("web.access", value=b"v%d" % i)
    if p.flush(30):
        raise TestFailure("admin (a super user) could not produce")
    log("admin, a super user, produced %d records without ACLs" % N)

    # alice without ACLs: Kafka's codes.
    a = raw(c, "alice")
    topics, _ = a.metadata(None)
    expect("alice Metadata(all) topics", sorted(topics), [])
    topics, _ = a.metadata(["web.access", "nope.new"])
    expect("alice Metadata(web.access)", topics["web.access"][0], 29)
    expect("alice Metadata(nope.new), not created", topics["nope.new"][0], 29)
    expect("alice Produce", a.produce("web.access", 0, batch(1))[0], 29)
    expect("alice Fetch", a.fetch("web.access", 0, 0)[0], 29)
    expect("alice ListOffsets", list_offsets_error(a, "web.access"), 29)
    expect("alice CreateTopics", create_topic(a, "db.y"), 29)
    expect("alice DeleteTopics", delete_topic(a, "db.x"), 29)
    expect("alice FindCoordinator(group)", find_coordinator(a, "g-1"), 30)
    expect("alice FindCoordinator(txn)", find_coordinator(a, "t-1", 1), 53)
    expect("alice InitProducerId", a.init_producer_id()[0], 31)
    expect("alice DescribeAcls", describe_acls_error(a), 31)
    a.close()
    out = c.cli("topics", "list").stdout.split()
    if "nope.new" in out or "db.y" in out or "db.x" not in out:
        raise TestFailure("topics after alice's refused requests: %r" % out)

    # READ on prefixes web. (topic) and g- (group).
    c.cli("acls", "create", "--topic", "web.", "--resource-pattern-type", "prefixed",
          "--allow-principal", "User:alice", "--operation", "read")
    c.cli("acls", "create", "--group", "g-", "--resource-pattern-type", "prefixed",
          "--allow-principal", "User:alice", "--operation", "read")
    seen = consume_group(c, "alice", "web.access", "g-1", N)
    log("alice consumed %d records with group g-1 after READ on prefixes" % len(seen))
    a = raw(c, "alice")
    topics, _ = a.metadata(None)
    expect("alice Metadata(all) with READ web.*", sorted(topics), ["web.access"])
    expect("alice Produce with READ only", a.produce("web.access", 0, batch(1))[0], 29)
    expect("alice Fetch with READ", a.fetch("web.access", 0, 0)[0], 0)

    # DENY overrides ALLOW.
    c.cli("acls", "create", "--topic", "web.access", "--deny-principal", "User:alice",
          "--operation", "read")
    expect("alice Fetch with DENY READ", a.fetch("web.access", 0, 0)[0], 29)
    topics, _ = a.metadata(["web.access"])
    expect("alice Metadata(web.access) with DENY READ (DESCRIBE allowed)",
           topics["web.access"][0], 0)
    a.close()

    # WRITE on web.: produce, but not read, create db.x or see it.
    c.cli("acls", "create", "--topic", "web.", "--resource-pattern-type", "prefixed",
          "--allow-principal", "User:mallory", "--operation", "write")
    seclib.require("kcat")
    lines = b"".join(b"m%d\n" % i for i in range(10))
    kp = seclib.kcat(["-P", "-b", c.listeners["sasl"], "-t", "web.access"],
                     {"security.protocol": "sasl_plaintext", "sasl.mechanisms": "PLAIN",
                      "sasl.username": "mallory", "sasl.password": PW["mallory"]}, input=lines)
    if kp.returncode != 0:
        raise TestFailure("kcat -P as mallory: %s" % kp.stderr.decode(errors="replace"))
    log("mallory produced 10 records to web.access with kcat (PLAIN)")
    m = raw(c, "mallory")
    expect("mallory Fetch", m.fetch("web.access", 0, 0)[0], 29)
    expect("mallory CreateTopics db.x", create_topic(m, "db.z"), 29)
    expect("mallory Produce db.x", m.produce("db.x", 0, batch(1))[0], 29)
    topics, _ = m.metadata(None)
    expect("mallory Metadata(all)", sorted(topics), ["web.access"])
    m.close()

    listing = sorted(c.cli("acls", "list").stdout.splitlines())
    want = sorted(["Topic\tPrefixed\tweb.\tUser:alice\t*\tRead\tAllow",
                   "Group\tPrefixed\tg-\tUser:alice\t*\tRead\tAllow",
                   "Topic\tLiteral\tweb.access\tUser:alice\t*\tRead\tDeny",
                   "Topic\tPrefixed\tweb.\tUser:mallory\t*\tWrite\tAllow"])
    expect("acls list", listing, want)

    # They survive a restart.
    path = os.path.join(c.data, "acls")
    expect("acls file mode", oct(stat.S_IMODE(os.stat(path).st_mode)), oct(0o600))
    c.restart()
    expect("acls list after a restart", sorted(c.cli("acls", "list").stdout.splitlines()), want)
    a = raw(c, "alice")
    expect("alice Fetch with DENY READ after a restart", a.fetch("web.access", 0, 0)[0], 29)
    c.cli("acls", "delete", "--topic", "web.access", "--resource-pattern-type", "literal",
          "--deny-principal", "User:alice")
    expect("alice Fetch after acls delete of the DENY", a.fetch("web.access", 0, 0)[0], 0)
    a.close()
    expect("acls list after delete", sorted(c.cli("acls", "list").stdout.splitlines()),
           sorted(x for x in want if not x.endswith("Deny")))

    # Deny by default: ANONYMOUS no longer a super user.
    with open(c.config) as f:
        text = f.read()
    with open(c.config, "w") as f:
        f.write(text.replace(", User:ANONYMOUS", ""))
    c.restart()
    p = c.cli("acls", "list", check=False)
    if p.returncode != 1 or "CLUSTER_AUTHORIZATION_FAILED" not in p.stderr:
        raise TestFailure("acls list as User:ANONYMOUS: exit %d, %s" % (p.returncode, p.stderr))
    log("without super user rights, User:ANONYMOUS gets CLUSTER_AUTHORIZATION_FAILED")
    consume_group(c, "alice", "web.access", "g-2", N + 10)
    log("alice's grants still work after the second restart")


if __name__ == "__main__":
    seclib.run(main, LISTENERS, users=USERS, extra_yaml=AUTHORIZER)
