# SPDX-License-Identifier: Apache-2.0
"""A leader cut from ZooKeeper takes no more writes once it has lost its session.

Tier B (root; skipped otherwise): three ZooKeeper servers and three
collectors in network namespaces (lib/netns.py), one partition,
replication factor 3, min.insync.replicas 2, session timeout 6 s. With
raw Produce requests (v3) of one idempotent producer:

  1. seq 0 to the leader L: acknowledged;
  2. L cut from the three ZooKeeper servers (nftables in its namespace;
     it still reaches the other brokers and the clients reach it); the
     controller gives the partition a new leader N once L's session has
     expired;
  3. seq 1 to N: acknowledged;
  4. seq 2 to L, still cut off and still holding the old state: it must
     answer NOT_LEADER_OR_FOLLOWER (retriable: the client looks for the
     leader again). Before, L took the batch as the leader of the old
     epoch and answered OUT_OF_ORDER_SEQUENCE_NUMBER (its producer state
     ends at seq 0, N's at 1), which librdkafka makes fatal for the
     producer when the batch is the first one it is waiting for: what
     0670's split showed (a client with stale metadata, from L, goes back
     to L). Kafka 2.8's broker answers the same OUT_OF_ORDER there; a
     collector leads only while its ZooKeeper session is connected and
     it has read the partition's state in that session;
  5. healed: once every replica is back in the ISR, seq 2 to the current
     leader is acknowledged;
  6. that leader cut from the other brokers, seq 3 is appended and parked
     (acks=all, TimeoutMs 30 s); then cut from ZooKeeper too, it answers
     the parked write NOT_LEADER_OR_FOLLOWER once it notices, not
     REQUEST_TIMED_OUT at the timeout (which librdkafka before 2.3 takes
     as "written", making the new leader's OUT_OF_ORDER_SEQUENCE_NUMBER
     for seq 4 fatal: 0670's oneway and split showed that too);
  7. healed again: seq 3 is acknowledged by the leader right after seq 2,
     and the partition holds seq 0, 1, 2 and 3 once each, in that order.

Every wait is bounded; everything is removed however the test ends.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import netns  # noqa: E402
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import check, wait_for  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "replication_leader", os.path.join(HERE, "0620-replication-leader.py"))
r = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(r)
r.TOPIC = "checker"  # the topic NetRun creates

SESSION_S = 6
BOUND = SESSION_S * 4 + 30
NONE, NOT_LEADER, REQUEST_TIMED_OUT, OUT_OF_ORDER = 0, 6, 7, 45
PARKED_TIMEOUT_MS = 30000
ZKS = ["zk1", "zk2", "zk3"]


def init_producer_id(raw):
    rd = raw.call(22, 0, r.kstr(None) + r.s32(60000))
    rd.i32()
    err, pid, epoch = rd.i16(), rd.i64(), rd.i16()
    check(err == 0, "InitProducerId: error %d" % err)
    return pid, epoch


def batch(pid, epoch, seq):
    import time
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    b.append(0, timestamp=int(time.time() * 1000), key=None, value=("z-%d" % seq).encode(),
             headers=[])
    return bytes(b.build())


def addr(b):
    return "%s:%d" % (b.host, b.kafka_port)


def leader_seen_by(b):
    """(leader, leader epoch, isr) of partition 0 in broker b's own Metadata, or None."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": addr(b), "socket.timeout.ms": 3000, "log_level": 2})
    try:
        md = a.list_topics(topic=r.TOPIC, timeout=5)
    except Exception:  # noqa: B902 - KafkaException: not answering now
        return None
    t = md.topics.get(r.TOPIC)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    p = t.partitions[0]
    return p.leader, sorted(p.isrs)


def produce(b, pid, epoch, seq, timeout_ms=20000):
    raw = r.Raw(addr(b))
    try:
        return r.produce_recv(raw, r.produce_send(raw, -1, batch(pid, epoch, seq), timeout_ms))
    finally:
        raw.close()


def read_all(run, want):
    """Every value of partition 0 from its start (its log starts at 0)."""
    import time
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": run.bootstrap(), "group.id": "t0671",
                  "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 2})
    got = []
    try:
        c.assign([TopicPartition(r.TOPIC, 0, 0)])
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if got and got[-1] == want and m.error().code() == KafkaError._PARTITION_EOF:
                    break
                continue
            got.append(m.value().decode())
    finally:
        c.close()
    return got


def main():
    try:
        import confluent_kafka  # noqa: F401
        import kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    netns.available()
    run = netns.NetRun([], partitions=1, session_s=SESSION_S, seed=671)
    with run.cluster_ctx(None):
        run.setup()
        md = wait_for("partition 0 led with a full ISR", run.healthy, BOUND, 0.5)
        leader = md[1][0][0]
        L = run.brokers[leader]
        others = [b for i, b in run.brokers.items() if i != leader]
        raw = r.Raw(addr(L))
        pid, epoch = init_producer_id(raw)
        raw.close()
        # The others' metadata may name L before L has read the topic itself.
        e, off0 = wait_for("seq 0 acknowledged by the leader %d" % leader,
                           lambda: (lambda x: x if x[0] == NONE else None)(
                               produce(L, pid, epoch, 0)), BOUND, 0.5)
        log("step 1: leader %d acknowledged seq 0 at offset %d (producer id %d)"
            % (leader, off0, pid))

        run.net.cut("b%d" % leader, ZKS)
        try:
            def new_leader():
                for b in others:
                    s = leader_seen_by(b)
                    if s and s[0] not in (-1, leader) and s[0] in run.brokers and len(s[1]) >= 2:
                        return run.brokers[s[0]]
                return None
            N = wait_for("a new leader after broker %d lost ZooKeeper" % leader, new_leader,
                         BOUND, 0.5)
            log("step 2: broker %d cut from ZooKeeper; broker %d leads now" % (leader, N.id))
            e, off1 = wait_for("seq 1 acknowledged by the new leader %d" % N.id,
                               lambda: (lambda x: x if x[0] == NONE else None)(
                                   produce(N, pid, epoch, 1)), BOUND, 0.5)
            log("step 3: broker %d acknowledged seq 1 at offset %d" % (N.id, off1))
            s = leader_seen_by(L)
            log("broker %d, still cut off, reports leader %s" % (leader, s and s[0]))
            e, _ = produce(L, pid, epoch, 2, timeout_ms=5000)
            check(e != OUT_OF_ORDER,
                  "step 4: the cut-off ex-leader %d answered seq 2 with "
                  "OUT_OF_ORDER_SEQUENCE_NUMBER (librdkafka's fatal error): it took the write "
                  "as the leader of the old epoch"
                  % leader)
            check(e == NOT_LEADER, "step 4: the cut-off ex-leader %d answered seq 2 with error %d,"
                  " not NOT_LEADER_OR_FOLLOWER" % (leader, e))
            log("step 4: broker %d, without its session, answered NOT_LEADER_OR_FOLLOWER" % leader)
        finally:
            run.net.heal_all()
        check(run.wait_healthy("the heal", BOUND * 2) is not None,
              "the cluster did not heal: no full ISR")
        def seq2():
            md = run.healthy()
            if md is None:
                return None
            b = run.brokers[md[1][0][0]]
            e, off = produce(b, pid, epoch, 2)
            return (b, off) if e == NONE else None
        cur, off2 = wait_for("seq 2 acknowledged by the leader", seq2, BOUND, 0.5)
        check(off2 == off1 + 1, "seq 2 at offset %d, after seq 1 at %d" % (off2, off1))
        log("step 5: healed; leader %d acknowledged seq 2 at offset %d" % (cur.id, off2))

        # 6. A write parked at the leader (its followers cut off) when it
        # loses ZooKeeper too is answered NOT_LEADER_OR_FOLLOWER, not left
        # to REQUEST_TIMED_OUT ("possibly written" to the client).
        zombie = cur
        run.net.cut("b%d" % zombie.id, ["b%d" % i for i in run.brokers if i != zombie.id])
        try:
            raw = r.Raw(addr(zombie))
            corr = r.produce_send(raw, -1, batch(pid, epoch, 3), PARKED_TIMEOUT_MS)
            wait_for("broker %d appended seq 3" % zombie.id,
                     lambda: r.plog_end(zombie) == off2 + 2, BOUND, 0.2)
            run.net.cut("b%d" % zombie.id, ZKS)
            e, _ = r.produce_recv(raw, corr)
            raw.close()
            check(e != REQUEST_TIMED_OUT,
                  "step 6: the parked write waited for its timeout at broker %d without a "
                  "ZooKeeper session (REQUEST_TIMED_OUT)" % zombie.id)
            check(e == NOT_LEADER, "step 6: the parked write got error %d, not "
                  "NOT_LEADER_OR_FOLLOWER" % e)
            log("step 6: broker %d, cut from everything, answered its parked write "
                "NOT_LEADER_OR_FOLLOWER" % zombie.id)
        finally:
            run.net.heal_all()
        check(run.wait_healthy("the second heal", BOUND * 2) is not None,
              "the cluster did not heal: no full ISR")

        def seq3():
            md = run.healthy()
            if md is None:
                return None
            e, off = produce(run.brokers[md[1][0][0]], pid, epoch, 3)
            return off if e == NONE else None
        off3 = wait_for("seq 3 acknowledged by the leader", seq3, BOUND, 0.5)
        check(off3 == off2 + 1, "seq 3 at offset %d, after seq 2 at %d" % (off3, off2))
        got = read_all(run, "z-3")
        check(got == ["z-0", "z-1", "z-2", "z-3"], "the partition holds %s" % got)
        log("the partition holds %s" % got)


if __name__ == "__main__":
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
