# SPDX-License-Identifier: Apache-2.0
"""Zombie fetchers and stale reads (KIP-320): the design's failure table, row 5.

Rule under test: Fetch, ListOffsets and OffsetForLeaderEpoch check the
request's CurrentLeaderEpoch against the partition's: an older one gets
FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH, on leaders and
followers alike.

One ZooKeeper and three collectors (session timeout 6 s); topic `zombie`
(1 partition, replication factor 3, min.insync.replicas 2), led by L at
leader epoch e0 with followers F1 and F2.
  1. acks=all records A reach every replica;
  2. F1 and F2 are paused briefly and L takes acks=1 records that only it
     holds; then L is paused (SIGSTOP) past its session and the followers
     resume: L is now a zombie whose log holds, above the committed
     records, a tail the others lack;
  3. the controller elects N (F1 or F2) at epoch e1 > e0 and takes L out
     of the ISR. N answers Fetch (as a consumer and as the zombie
     follower L), ListOffsets and OffsetForLeaderEpoch with
     FENCED_LEADER_EPOCH at e0 and UNKNOWN_LEADER_EPOCH at e1 + 1, and
     serves at e1; the other follower G answers FENCED_LEADER_EPOCH at e0
     and NOT_LEADER_OR_FOLLOWER at e1;
  4. acks=all records B go to N, at the offsets of L's tail;
  5. Fetches queued on L while it sleeps, then a confluent-kafka consumer
     bootstrapped on L right after SIGCONT: a Fetch at e1 gets
     UNKNOWN_LEADER_EPOCH (or NOT_LEADER_OR_FOLLOWER once L knows) and no
     records; those at e0 or without an epoch may be served by the
     zombie, as by Kafka's until its LeaderAndIsr, but whatever they and
     the consumer read is N's record at that offset (L's HW never covered
     its tail, so the zombie cannot serve it);
  6. once L has read the new state it answers FENCED_LEADER_EPOCH at e0
     to all three requests and NOT_LEADER_OR_FOLLOWER at e1: it no longer
     serves as leader; it rejoins the ISR, and every record the consumer
     read is on N at that offset.
librdkafka 2.0 (Debian's) sends no CurrentLeaderEpoch (its KIP-320 support
came in 2.1), so the epoch answers are checked with raw requests
(broker/kafka_raw.py). Every wait is bounded; every process stops however
the test ends.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "broker"))
from kafka_raw import (FENCED_LEADER_EPOCH, NONE, NOT_LEADER_OR_FOLLOWER,  # noqa: E402
                       UNKNOWN_LEADER_EPOCH, Conn, records)
from replication_scenario import produce, start_topic, state  # noqa: E402
from tributary_harness import Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, check, run, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "zombie"
NAMES = {NONE: "NONE", NOT_LEADER_OR_FOLLOWER: "NOT_LEADER_OR_FOLLOWER",
         FENCED_LEADER_EPOCH: "FENCED_LEADER_EPOCH", UNKNOWN_LEADER_EPOCH: "UNKNOWN_LEADER_EPOCH"}


def metric(b, name):
    return b.metrics().get('%s{topic="%s",partition="0"}' % (name, TOPIC))


def err_name(e):
    return NAMES.get(e, str(e))


def answers(raw, epoch, replica=-1):
    """The errors of Fetch, ListOffsets and OffsetForLeaderEpoch at CurrentLeaderEpoch `epoch`."""
    return (raw.fetch_epoch(TOPIC, 0, 0, replica=replica, epoch=epoch)[0],
            raw.list_latest(TOPIC, 0, epoch=epoch)[0],
            raw.offset_for_leader_epoch(TOPIC, 0, current=epoch, epoch=max(epoch - 1, 0))[0])


def expect(raw, who, epoch, want):
    got = answers(raw, epoch)
    check(got == (want,) * 3, "%s at CurrentLeaderEpoch %d: Fetch %s, ListOffsets %s, "
          "OffsetForLeaderEpoch %s (expected %s)" % ((who, epoch) + tuple(map(err_name, got)) +
                                                     (err_name(want),)))


def read_all(raw, epoch, hw):
    """{offset: value} of [0, hw) from a leader at `epoch` (raw Fetch as a consumer)."""
    out, at = {}, 0
    deadline = time.monotonic() + 60
    while at < hw:
        check(time.monotonic() < deadline, "read %d of %d records" % (at, hw))
        err, _hw, recs = raw.fetch_epoch(TOPIC, 0, at, epoch=epoch)
        check(err == NONE, "Fetch at %d: %s" % (at, err_name(err)))
        for off, v in records(recs):
            if off >= at:
                out[off] = v
                at = off + 1
    return out


def consume_from(bootstrap, end):
    """[(offset, value)] a confluent-kafka consumer bootstrapped on `bootstrap` reads up to `end`."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "zombie-%f" % time.time(),
                  "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000})
    seen, pos = [], 0
    try:
        c.assign([TopicPartition(TOPIC, 0, 0)])
        deadline = time.monotonic() + BOUND
        while pos < end and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            seen.append((m.offset(), m.value()))
            pos = m.offset() + 1
    finally:
        c.close()
    check(pos >= end, "the consumer read %d of %d records" % (pos, end))
    return seen


def same_as(ref, got, who):
    bad = [(o, v, ref.get(o)) for o, v in got if ref.get(o) != v]
    check(not bad, "%s read %d record(s) the new leader does not hold at that offset, e.g. "
          "offset %d: %r (the new leader: %r)" % ((who, len(bad)) + (bad[0] if bad else
                                                                     (0, 0, 0))))


def main():
    try:
        import confluent_kafka  # noqa: F401
        import kafka  # noqa: F401  (broker/kafka_raw.py decodes record batches with it)
    except ImportError as e:
        raise Skip("%s is missing" % e.name)
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        ids = start_topic(cl, TOPIC)
        zk = cl.zk.reader()
        raws = []
        try:
            st = wait_for("led with all three in the ISR", lambda: (
                lambda s: s and s["leader"] > 0 and len(s["isr"]) == 3 and s)(state(zk, TOPIC)),
                BOUND)
            L, e0 = st["leader"], st["leader_epoch"]
            followers = [i for i in ids if i != L]
            log("leader %d at epoch %d, followers %s" % (L, e0, followers))

            # 1. Committed records everywhere.
            A = [b"committed-%d" % i for i in range(200)]
            acked, failed, left = produce(cl.bootstrap(), TOPIC, A, "all")
            check(len(acked) == len(A) and not failed and left == 0,
                  "acks=all: %d acked, %d failed, %d left" % (len(acked), len(failed), left))
            hw_a = int(metric(cl.broker(L), "tributary_partition_high_watermark"))
            for f in followers:
                wait_for("follower %d at %d" % (f, hw_a), lambda: metric(
                    cl.broker(f), "tributary_partition_log_end_offset") == hw_a, BOUND)

            # 2. A tail only L holds; then L sleeps past its session.
            for f in followers:
                cl.broker(f).pause()
            try:
                tail = [b"tail-%d" % i for i in range(100)]
                acked1, failed1, _ = produce(cl.broker(L).bootstrap, TOPIC, tail, "1")
                check(len(acked1) == len(tail), "acks=1 on the lone leader: %d acked, %s"
                      % (len(acked1), failed1[:2]))
                l_end = int(metric(cl.broker(L), "tributary_partition_log_end_offset"))
                check(l_end > hw_a, "L's tail: log end %d, HW %d" % (l_end, hw_a))
                cl.broker(L).pause()
            finally:
                for f in followers:
                    cl.broker(f).resume()
            log("broker %d paused with a tail [%d, %d) no follower has" % (L, hw_a, l_end))

            # 3. A new leader; it and the other follower check the epoch.
            st1 = wait_for("a new leader without %d in the ISR" % L, lambda: (
                lambda s: s and s["leader"] in followers and L not in s["isr"] and s)(
                    state(zk, TOPIC)), BOUND)
            N, e1 = st1["leader"], st1["leader_epoch"]
            G = [f for f in followers if f != N][0]
            check(e1 > e0, "leader epoch %d -> %d" % (e0, e1))
            log("broker %d leads at epoch %d (ISR %s)" % (N, e1, st1["isr"]))
            nr = Conn(cl.broker(N).bootstrap, timeout=60)
            raws.append(nr)
            wait_for("broker %d serves at epoch %d" % (N, e1),
                     lambda: answers(nr, e1) == (NONE,) * 3, BOUND)
            expect(nr, "the new leader %d" % N, e0, FENCED_LEADER_EPOCH)
            expect(nr, "the new leader %d" % N, e1 + 1, UNKNOWN_LEADER_EPOCH)
            err, _hw, recs = nr.fetch_epoch(TOPIC, 0, hw_a, replica=L, epoch=e0)
            check(err == FENCED_LEADER_EPOCH and not recs, "the zombie follower %d's Fetch at "
                  "epoch %d: %s with %d bytes" % (L, e0, err_name(err), len(recs)))
            gr = Conn(cl.broker(G).bootstrap, timeout=60)
            raws.append(gr)
            wait_for("broker %d follows at epoch %d" % (G, e1),
                     lambda: answers(gr, e1) == (NOT_LEADER_OR_FOLLOWER,) * 3, BOUND)
            expect(gr, "the follower %d" % G, e0, FENCED_LEADER_EPOCH)

            # 4. Committed records at the offsets of L's tail.
            B = [b"after-%d" % i for i in range(200)]
            live = ",".join(cl.broker(f).bootstrap for f in followers)
            acked2, failed2, left2 = produce(live, TOPIC, B, "all")
            check(len(acked2) == len(B) and left2 == 0, "acks=all on the new leader: %d acked, "
                  "%d failed, %d left" % (len(acked2), len(failed2), left2))
            hw_n = nr.list_latest(TOPIC, 0, epoch=e1)[1]
            ref = read_all(nr, e1, hw_n)
            check(all(ref.get(o, b"").startswith(b"after-") for o in range(l_end, hw_n)) and
                  any(ref[o].startswith(b"after-") for o in range(hw_a, l_end)),
                  "the new leader's records do not cover L's tail")
            log("broker %d holds %d records; %d of them where L's tail is" % (
                N, hw_n, sum(1 for o in range(hw_a, l_end) if not ref[o].startswith(b"tail-"))))

            # 5. The zombie wakes with requests waiting for it.
            zr = Conn(cl.broker(L).bootstrap, timeout=60)
            raws.append(zr)
            # A client that knows e1 is never served by the zombie; one at e0 (or without
            # an epoch) may be until the zombie learns, but only records below its HW.
            stale_ok = (NONE, FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER)
            queued = [("at %d from 0" % e0, zr.fetch_epoch_send(TOPIC, 0, 0, epoch=e0), stale_ok),
                      ("at %d from %d" % (e0, hw_a), zr.fetch_epoch_send(TOPIC, 0, hw_a, epoch=e0),
                       stale_ok),
                      ("without an epoch from %d" % hw_a, zr.fetch_epoch_send(TOPIC, 0, hw_a),
                       stale_ok),
                      ("at %d from %d" % (e1, hw_a), zr.fetch_epoch_send(TOPIC, 0, hw_a, epoch=e1),
                       (UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER))]
            cl.broker(L).resume()
            served = []
            for what, corr, ok in queued:
                err, zhw, recs = zr.fetch_epoch_recv(corr)
                got = records(recs)
                log("woken broker %d: Fetch %s answered %s, HW %d, %d records"
                    % (L, what, err_name(err), zhw, len(got)))
                check(err in ok, "woken broker %d answered a Fetch %s with %s"
                      % (L, what, err_name(err)))
                check(err == NONE or not got, "woken broker %d answered %s with records"
                      % (L, err_name(err)))
                if err == NONE:
                    check(zhw <= hw_n, "woken broker %d's HW %d is past the new leader's %d"
                          % (L, zhw, hw_n))
                served += got
            same_as(ref, served, "a Fetch from the woken broker %d" % L)
            seen = consume_from(cl.broker(L).bootstrap, hw_n)
            same_as(ref, seen, "a consumer bootstrapped on broker %d" % L)
            log("a consumer bootstrapped on the woken broker read %d records, all the new "
                "leader's" % len(seen))

            # 6. The old leader has read the new state: it no longer leads.
            lr = Conn(cl.broker(L).bootstrap, timeout=60)
            raws.append(lr)
            wait_for("broker %d follows at epoch %d" % (L, e1),
                     lambda: answers(lr, e1) == (NOT_LEADER_OR_FOLLOWER,) * 3, BOUND)
            expect(lr, "the old leader %d" % L, e0, FENCED_LEADER_EPOCH)
            wait_for("broker %d back in the ISR" % L,
                     lambda: L in (state(zk, TOPIC) or {}).get("isr", []), BOUND)
            st2 = state(zk, TOPIC)
            check(st2["leader"] == N and st2["leader_epoch"] == e1,
                  "the leadership moved again: %s" % st2)
            expect(nr, "the new leader %d" % N, e0, FENCED_LEADER_EPOCH)
            log("broker %d follows %d at epoch %d and refuses epoch %d" % (L, N, e1, e0))
        finally:
            for r in raws:
                r.close()
            zk.close()


if __name__ == "__main__":
    run(main, (TestFailure, OSError, ValueError))
