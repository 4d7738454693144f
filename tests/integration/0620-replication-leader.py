# SPDX-License-Identifier: Apache-2.0
"""The leader side of replication on a three-broker cluster (lib/zk_cluster.py).

replica.lag.time.max.ms is 8 s and the ZooKeeper session timeout 40 s, so
a paused follower leaves the ISR by the leader's lag rule before its
session could expire. A topic with one partition, replication factor 3
and min.insync.replicas 2:
  1. acks=all (confluent-kafka): right after the acknowledgements every
     follower's log end (its metrics) is past the last acknowledged
     offset. With both followers SIGSTOPped (briefly, well inside the lag
     time) a raw acks=all Produce is not answered, and a consumer's Fetch
     and ListOffsets see nothing past the high watermark although the
     leader's log end moved; resumed, the produce is answered NONE and
     consumers see the records;
  2. one follower paused (and put behind by an acks=1 record: a follower
     at the log end stays in sync however long it is silent, as in Kafka)
     leaves the ISR after the lag time: the state znode, Metadata, the
     leader's tributary_isr_shrinks_total and
     tributary_under_replicated_partitions; acks=all works with two;
  3. both paused: the ISR is the leader alone and acks=all gets
     NOT_ENOUGH_REPLICAS (kafka-python, no retries);
  4. resumed, both catch up and rejoin: [1, 2, 3] in ZooKeeper and
     Metadata, the expand counter, the high watermark at the log end;
  5. OffsetForLeaderEpoch on the leader answers the current epoch's end
     (the log end) and FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for an
     older / newer CurrentLeaderEpoch; a follower answers
     NOT_LEADER_OR_FOLLOWER to OffsetForLeaderEpoch, Produce, Fetch and
     ListOffsets.
Every wait is bounded; every process stops however the test ends.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "broker"))
from kafka_raw import (FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER,  # noqa: E402
                       UNKNOWN_LEADER_EPOCH, Conn, batch, count_records, s16, s32, string)
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

LAG_MS = 8000
SESSION_S = 40
TOPIC = "r3"
# Bounds, not expectations: a shrink comes within 1.5 lag times; a loaded 2-CPU machine.
BOUND = LAG_MS / 1000 * 3 + 30


def produce_send(raw, acks, records, timeout_ms=60000):
    """Produce v3 to partition 0; returns the correlation id (read with produce_recv)."""
    body = (string(None) + s16(acks) + s32(timeout_ms) + s32(1) + string(TOPIC) + s32(1) +
            s32(0) + s32(len(records)) + records)
    return raw.send(0, 3, body)


def ofle(conn, current, epoch):
    """OffsetForLeaderEpoch v3 (a client) of partition 0: (error, epoch, end offset)."""
    return conn.offset_for_leader_epoch(TOPIC, 0, current, epoch)


def produce_recv(raw, corr):
    r = raw.recv(corr)
    check(r.i32() == 1 and r.string() == TOPIC and r.i32() == 1, "Produce response shape")
    r.i32()
    return r.i16(), r.i64()


# ---- the cluster --------------------------------------------------------------------------------

def zk_state(cl):
    zr = cl.zk.reader()
    try:
        v = zr.get_json(CHROOT + "/brokers/topics/%s/partitions/0/state" % TOPIC)
    finally:
        zr.close()
    return v[0] if v else None


def metric(b, name):
    return b.metrics().get(name, 0)


def md_isr(b):
    """The ISR of TOPIC-0 in broker b's Metadata (confluent-kafka), sorted."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(TOPIC, timeout=15)
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    return sorted(t.partitions[0].isrs)


def produce_all(bootstrap, n, tag):
    """n records with acks=all (confluent-kafka); the last offset acknowledged."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000})
    errors, offsets = [], []

    def dr(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())
    for i in range(n):
        p.produce(TOPIC, value=("%s-%d" % (tag, i)).encode(), partition=0, on_delivery=dr)
    left = p.flush(90)
    check(left == 0 and not errors, "acks=all: %d undelivered, errors %s" % (left, errors[:3]))
    return max(offsets)


def plog_end(b):
    return b.metrics().get('tributary_partition_log_end_offset{topic="%s",partition="0"}' % TOPIC)


def main():
    try:
        import confluent_kafka  # noqa: F401
        import kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "a") as f:
                f.write("  replica.lag.time.max.ms: %d\n" % LAG_MS)
        cl.start()
        cl.wait_controller([1, 2, 3])
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": cl.bootstrap()})
        fut = admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])
        fut[TOPIC].result(60)
        st = wait_for("a state for %s-0" % TOPIC,
                      lambda: (lambda s: s if s and s["leader"] >= 0 else None)(zk_state(cl)),
                      BOUND)
        leader, epoch = st["leader"], st["leader_epoch"]
        check(sorted(st["isr"]) == [1, 2, 3], "first ISR %s" % st["isr"])
        fa, fb = [i for i in (1, 2, 3) if i != leader]
        lb = cl.broker(leader)
        lraw = Conn(lb.bootstrap, timeout=60)
        wait_for("broker %d leads %s-0" % (leader, TOPIC),
                 lambda: lraw.list_latest(TOPIC, 0)[0] == 0, BOUND)
        log("step 0: leader %d at epoch %d, followers %d and %d" % (leader, epoch, fa, fb))

        # 1. acks=all: acknowledged once the followers have it.
        last = produce_all(cl.bootstrap(), 200, "a")
        for fid in (fa, fb):
            end = plog_end(cl.broker(fid))
            check(end is not None and end >= last + 1, "follower %d's log ends at %s right "
                  "after offset %d was acknowledged" % (fid, end, last))
        # Followers paused (well inside the lag time): a raw acks=all waits, consumers see
        # nothing past the high watermark.
        hw0 = lraw.list_latest(TOPIC, 0)[1]
        check(hw0 == last + 1, "high watermark %d after %d acknowledged" % (hw0, last + 1))
        cl.broker(fa).pause()
        cl.broker(fb).pause()
        prod = Conn(lb.bootstrap, timeout=60)
        corr = produce_send(prod, -1, batch(5, "p"))
        wait_for("the leader's log end past the paused followers",
                 lambda: plog_end(lb) == hw0 + 5, BOUND)
        err, hw, recs = lraw.fetch_epoch(TOPIC, 0, hw0)
        check(err == 0 and hw == hw0 and not recs, "a consumer read past the high watermark: "
              "HW %d (was %d), %d bytes" % (hw, hw0, len(recs)))
        check(lraw.list_latest(TOPIC, 0)[1] == hw0, "ListOffsets latest past the high watermark")
        check(not prod.readable(), "acks=all answered while both followers were paused")
        cl.broker(fa).resume()
        cl.broker(fb).resume()
        e, base = produce_recv(prod, corr)
        check(e == 0 and base == hw0, "acks=all after the resume: error %d offset %d" % (e, base))
        err, hw, recs = lraw.fetch_epoch(TOPIC, 0, hw0)
        check(hw >= hw0 + 5 and count_records(recs) == 5, "after the resume: HW %d, %d records"
              % (hw, count_records(recs)))
        log("step 1: acks=all acknowledged only with the followers; consumers below the HW")

        # 2. One follower paused past the lag time leaves the ISR; acks=all goes on.
        shrinks = metric(lb, "tributary_isr_shrinks_total")
        cl.broker(fb).pause()
        e, _ = produce_recv(prod, produce_send(prod, 1, batch(1, "behind")))
        check(e == 0, "acks=1: error %d" % e)
        wait_for("ISR without %d in ZooKeeper" % fb,
                 lambda: sorted(zk_state(cl)["isr"]) == sorted([leader, fa]), BOUND)
        check(metric(lb, "tributary_isr_shrinks_total") > shrinks, "no shrink counted")
        check(metric(lb, "tributary_under_replicated_partitions") >= 1,
              "no under-replicated partition counted")
        wait_for("Metadata ISR without %d" % fb, lambda: md_isr(lb) == sorted([leader, fa]),
                 BOUND)
        last = produce_all(lb.bootstrap, 10, "b")
        log("step 2: ISR [%d, %d]; acks=all up to %d" % (leader, fa, last))

        # 3. Both paused: the leader alone: NOT_ENOUGH_REPLICAS.
        cl.broker(fa).pause()
        e, _ = produce_recv(prod, produce_send(prod, 1, batch(1, "behind")))
        check(e == 0, "acks=1: error %d" % e)
        wait_for("ISR of the leader alone", lambda: zk_state(cl)["isr"] == [leader], BOUND)
        from kafka import KafkaProducer
        from kafka.errors import NotEnoughReplicasError
        kp = KafkaProducer(bootstrap_servers=lb.bootstrap, acks="all", retries=0)
        try:
            kp.send(TOPIC, b"refused", partition=0).get(timeout=60)
            raise TestFailure("acks=all succeeded with the ISR [%d] and min.insync 2" % leader)
        except NotEnoughReplicasError:
            pass
        finally:
            kp.close()
        log("step 3: ISR [%d]: NOT_ENOUGH_REPLICAS" % leader)

        # 4. Resumed: both catch up and rejoin.
        expands = metric(lb, "tributary_isr_expands_total")
        cl.broker(fa).resume()
        cl.broker(fb).resume()
        wait_for("ISR [1, 2, 3] again", lambda: sorted(zk_state(cl)["isr"]) == [1, 2, 3], BOUND)
        wait_for("Metadata ISR [1, 2, 3]", lambda: md_isr(lb) == [1, 2, 3], BOUND)
        check(metric(lb, "tributary_isr_expands_total") >= expands + 2, "expansions not counted")
        st = zk_state(cl)
        check(st["leader"] == leader, "leadership moved to %d" % st["leader"])
        epoch = st["leader_epoch"]
        wait_for("high watermark at the log end",
                 lambda: lraw.list_latest(TOPIC, 0)[1] == plog_end(lb), BOUND)
        log("step 4: ISR [1, 2, 3] again")

        # 5. OffsetForLeaderEpoch, and what followers refuse.
        err, leo, le = lraw.list_latest(TOPIC, 0, replica=fa)
        check(err == 0 and le == epoch, "ListOffsets as a replica: error %d epoch %d" % (err, le))
        e, got, end = ofle(lraw, epoch, epoch)
        check(e == 0 and got == epoch and end == leo,
              "OffsetForLeaderEpoch(%d): error %d, epoch %d, end %d (log end %d)"
              % (epoch, e, got, end, leo))
        if epoch > 0:
            check(ofle(lraw, epoch - 1, epoch)[0] == FENCED_LEADER_EPOCH, "an older epoch passed")
        check(ofle(lraw, epoch + 1, epoch)[0] == UNKNOWN_LEADER_EPOCH, "a newer epoch passed")
        fr = Conn(cl.broker(fa).bootstrap, timeout=60)
        check(ofle(fr, -1, epoch)[0] == NOT_LEADER_OR_FOLLOWER, "a follower answered "
              "OffsetForLeaderEpoch")
        check(fr.list_latest(TOPIC, 0)[0] == NOT_LEADER_OR_FOLLOWER,
              "a follower answered ListOffsets")
        check(fr.fetch_epoch(TOPIC, 0, 0)[0] == NOT_LEADER_OR_FOLLOWER,
              "a follower answered a consumer's Fetch")
        check(produce_recv(fr, produce_send(fr, 1, batch(1, "x")))[0] == NOT_LEADER_OR_FOLLOWER,
              "a follower took a Produce")
        fr.close()
        prod.close()
        lraw.close()
        log("step 5: OffsetForLeaderEpoch(%d) = %d; followers refuse" % (epoch, end))
        print(json.dumps({"leader": leader, "epoch": epoch, "log_end": leo}))


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
