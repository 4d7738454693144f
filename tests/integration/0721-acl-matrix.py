#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The ACL matrix: every API the collector serves that acts on a topic,
group, transactional id or the cluster, asked in raw frames (SASL PLAIN) by
three principals:

  yes   ALLOW ALL on topic prefix t., group prefix g., transactional id
        prefix tx and the cluster;
  no    the same ALLOWs and a DENY ALL on each of them (DENY wins);
  none  no ACL at all.

yes must not get an authorization error, no and none must get Kafka's code
for the resource the API checks (TOPIC_AUTHORIZATION_FAILED 29,
GROUP_AUTHORIZATION_FAILED 30, CLUSTER_AUTHORIZATION_FAILED 31,
TRANSACTIONAL_ID_AUTHORIZATION_FAILED 53). Listing APIs (Metadata of every
topic, ListGroups) leave out what the principal may not describe.
"""
import importlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
seclib = importlib.import_module("0719_seclib")
from kafka_raw import Conn, array, batch, nbytes, s8, s16, s32, s64, string  # noqa: E402
from tributary_harness import TestFailure, log  # noqa: E402

LISTENERS = """
  - name: sasl
    address: 127.0.0.1:0
    security: sasl_plaintext
    sasl_mechanisms: [PLAIN]
"""
AUTHORIZER = """
authorizer:
  enabled: true
  super_users: [User:ANONYMOUS]
groups:
  group.initial.rebalance.delay.ms: 0
"""
WHO = ("yes", "no", "none")
USERS = [(u, u + "-pw", "SCRAM-SHA-256") for u in WHO]
T = "t.one"
G = "g.one"
TOPIC, GROUP, CLUSTER, TXN = 29, 30, 31, 53
AUTH_CODES = (TOPIC, GROUP, CLUSTER, TXN)


def login(c, user):
    conn = Conn(c.listeners["sasl"])
    if conn.call(17, 1, string("PLAIN")).i16() != 0:
        raise TestFailure("SaslHandshake refused")
    r = conn.call(36, 0, nbytes(b"\0%s\0%s-pw" % (user.encode(), user.encode())))
    if r.i16() != 0:
        raise TestFailure("%s cannot log in" % user)
    return conn


def first_i16(r, skip=0):
    r.take(skip)
    return r.i16()


def arr_first(r, before=0, inner_before=0):
    """The first i16 of the first element of a top-level array after `before` bytes."""
    r.take(before)
    n = r.i32()
    if n < 1:
        raise TestFailure("empty result array")
    if inner_before:
        r.take(inner_before)
    return r.i16()


def str_then_arr_first(r, before=0, after_name=0):
    """[Name string, [ ... i16 error ...]]: the first partition's error after after_name bytes."""
    r.take(before)
    if r.i32() < 1:
        raise TestFailure("empty result array")
    r.string()
    if r.i32() < 1:
        raise TestFailure("empty partition array")
    r.take(after_name)
    return r.i16()


# Each API: (name, expected code for no/none, function(conn) -> code).
def apis():
    out = []

    def add(name, code, fn):
        out.append((name, code, fn))

    add("Metadata(t.one)", TOPIC,
        lambda c: c.metadata([T])[0][T][0])
    add("Produce", TOPIC, lambda c: c.produce(T, 0, batch(1))[0])
    add("Produce(transactional)", TXN,
        lambda c: c.produce_many({T: {0: batch(1)}}, txn="tx1")[(T, 0)][0])
    add("Fetch", TOPIC, lambda c: c.fetch(T, 0, 0)[0])
    add("ListOffsets", TOPIC,
        lambda c: str_then_arr_first(c.call(2, 1, s32(-1) + array(
            [string(T) + array([s32(0) + s64(-1)])])), after_name=4))
    add("OffsetForLeaderEpoch", TOPIC,
        lambda c: str_then_arr_first(c.call(23, 2, array(
            [string(T) + array([s32(0) + s32(-1) + s32(0)])])), before=4))
    add("CreateTopics", TOPIC,
        lambda c: arr_first(c.call(19, 0, array(
            [string("t.new-%d" % id(c)) + s32(1) + s16(1) + array([]) + array([])]) + s32(5000)),
            inner_before=2 + len("t.new-%d" % id(c))))
    add("CreatePartitions(validate)", TOPIC,
        lambda c: (lambda r: (r.take(4), r.i32(), r.string(), r.i16())[3])(c.call(37, 0, array(
            [string(T) + s32(2) + s32(-1)]) + s32(5000) + s8(1))))
    add("DeleteRecords", TOPIC,
        lambda c: str_then_arr_first(c.call(21, 0, array(
            [string(T) + array([s32(0) + s64(0)])]) + s32(5000)), before=4, after_name=12))
    add("DescribeConfigs(topic)", TOPIC,
        lambda c: arr_first(c.call(32, 1, array([s8(2) + string(T) + s32(-1)]) + s8(0)),
                            before=4))
    add("DescribeConfigs(broker)", CLUSTER,
        lambda c: arr_first(c.call(32, 1, array([s8(4) + string("") + s32(-1)]) + s8(0)),
                            before=4))
    add("AlterConfigs(topic, validate)", TOPIC,
        lambda c: arr_first(c.call(33, 0, array([s8(2) + string(T) + array(
            [string("retention.ms") + string("3600000")])]) + s8(1)), before=4))
    add("IncrementalAlterConfigs(topic, validate)", TOPIC,
        lambda c: arr_first(c.call(44, 0, array([s8(2) + string(T) + array(
            [string("retention.ms") + s8(0) + string("3600000")])]) + s8(1)), before=4))
    add("FindCoordinator(group)", GROUP,
        lambda c: first_i16(c.call(10, 1, string(G) + s8(0)), 4))
    add("FindCoordinator(txn)", TXN,
        lambda c: first_i16(c.call(10, 1, string("tx1") + s8(1)), 4))
    add("JoinGroup", GROUP,
        lambda c: first_i16(c.call(11, 0, string(G) + s32(6000) + string("") + string("consumer")
                                   + array([string("range") + nbytes(b"\0\0\0\0\0\0")]))))
    add("SyncGroup", GROUP,
        lambda c: first_i16(c.call(14, 0, string(G) + s32(1) + string("m") + array([]))))
    add("Heartbeat", GROUP,
        lambda c: first_i16(c.call(12, 0, string(G) + s32(1) + string("m"))))
    add("LeaveGroup", GROUP,
        lambda c: first_i16(c.call(13, 0, string(G) + string("m"))))
    add("OffsetCommit", GROUP,
        lambda c: str_then_arr_first(c.call(8, 2, string(G) + s32(-1) + string("") + s64(-1)
                                            + array([string(T) + array(
                                                [s32(0) + s64(0) + string("")])])), after_name=4))
    add("OffsetFetch", GROUP,
        lambda c: str_then_arr_first(c.call(9, 1, string(G) + array(
            [string(T) + array([s32(0)])])), after_name=4 + 8 + 2))
    add("DescribeGroups", GROUP,
        lambda c: arr_first(c.call(15, 0, array([string(G)]))))
    add("OffsetDelete", GROUP,
        lambda c: first_i16(c.call(47, 0, string(G) + array([string(T) + array([s32(0)])]))))
    add("DeleteGroups", GROUP,
        lambda c: arr_first(c.call(42, 0, array([string("g.gone")])), before=4,
                            inner_before=2 + len("g.gone")))
    add("InitProducerId", CLUSTER, lambda c: c.init_producer_id()[0])
    add("InitProducerId(transactional)", TXN, lambda c: c.init_producer_id("tx1")[0])
    add("ElectLeaders", CLUSTER,
        lambda c: first_i16(c.call(43, 1, s8(0) + array([string(T) + array([s32(0)])])
                                   + s32(5000)), 4))
    add("DescribeAcls", CLUSTER,
        lambda c: first_i16(c.call(29, 1, s8(1) + string(None) + s8(1) + string(None)
                                   + string(None) + s8(1) + s8(1)), 4))
    add("CreateAcls", CLUSTER,
        lambda c: arr_first(c.call(30, 1, array([s8(2) + string("t.zzz") + s8(3)
                                                 + string("User:other") + string("*")
                                                 + s8(3) + s8(3)])), before=4))
    add("DeleteAcls", CLUSTER,
        lambda c: arr_first(c.call(31, 1, array([s8(2) + string("t.zzz") + s8(3)
                                                 + string("User:other") + string(None)
                                                 + s8(1) + s8(1)])), before=4))
    add("DescribeUserScramCredentials", CLUSTER, describe_scram)
    add("DeleteTopics", TOPIC,
        lambda c: arr_first(c.call(20, 0, array([string("t.del")]) + s32(5000)),
                            inner_before=2 + len("t.del")))
    return out


def describe_scram(conn):
    """DescribeUserScramCredentials v0 (flexible, header v2): the top-level error."""
    body = b"\x00" + b"\x00"  # Users: null (compact array 0), tagged fields
    hdr = s16(50) + s16(0) + s32(99) + string("it") + b"\x00"
    conn.send_raw(s32(len(hdr) + len(body)) + hdr + body)
    data = conn.recv_exact(struct.unpack(">i", conn.recv_exact(4))[0])
    if struct.unpack(">i", data[:4])[0] != 99:
        raise TestFailure("DescribeUserScramCredentials: wrong correlation id")
    # corr(4) header tags(1) throttle(4) error(2)
    return struct.unpack(">h", data[9:11])[0]


def main(c):
    for t in (T, "t.del"):
        c.cli("topics", "create", "--topic", t, "--partitions", "1")
    c.cli("produce", "--topic", T, input="a\nb\n")
    for u in ("yes", "no"):
        for res in (("--topic", "t."), ("--group", "g."), ("--transactional-id", "tx")):
            c.cli("acls", "create", res[0], res[1], "--resource-pattern-type", "prefixed",
                  "--allow-principal", "User:" + u, "--operation", "all")
        c.cli("acls", "create", "--cluster", "--allow-principal", "User:" + u,
              "--operation", "all")
    for res in (("--topic", "t."), ("--group", "g."), ("--transactional-id", "tx")):
        c.cli("acls", "create", res[0], res[1], "--resource-pattern-type", "prefixed",
              "--deny-principal", "User:no", "--operation", "all")
    c.cli("acls", "create", "--cluster", "--deny-principal", "User:no", "--operation", "all")
    conns = {u: login(c, u) for u in WHO}
    failures = []
    for name, code, fn in apis():
        got = {}
        for u in WHO:
            try:
                got[u] = fn(conns[u])
            except Exception as e:  # noqa: B902 - reported with the API's name
                failures.append("%s as %s: %s" % (name, u, e))
                conns[u] = login(c, u)
                got[u] = None
        ok = got["no"] == code and got["none"] == code and got["yes"] not in AUTH_CODES + (None,)
        log("%-40s yes=%s no=%s none=%s %s" % (name, got["yes"], got["no"], got["none"],
                                               "ok" if ok else "WRONG (want %d)" % code))
        if not ok:
            failures.append("%s: %r, expected %d for no/none" % (name, got, code))
    # Listings leave out what may not be described.
    for u in WHO:
        topics, _ = conns[u].metadata(None)
        if u == "yes":
            if T not in topics:
                failures.append("Metadata(all) as yes lacks %s: %r" % (T, sorted(topics)))
        elif topics:
            failures.append("Metadata(all) as %s lists %r" % (u, sorted(topics)))
        r = conns[u].call(16, 0, b"")
        err = r.i16()
        groups = r.array(lambda: (r.string(), r.string()))
        names = [g[0] for g in groups]
        log("ListGroups as %s: error %d, %r" % (u, err, names))
        if u != "yes" and names:
            failures.append("ListGroups as %s lists %r" % (u, names))
    for conn in conns.values():
        conn.close()
    if failures:
        raise TestFailure("; ".join(failures))


if __name__ == "__main__":
    seclib.run(main, LISTENERS, users=USERS, extra_yaml=AUTHORIZER)
