# SPDX-License-Identifier: Apache-2.0
"""A retried idempotent batch is acknowledged only once the high watermark passes it.

An idempotent producer retries a batch whose first attempt timed out
waiting for the ISR. The leader finds it in its producer state and must
not answer NONE at once: the original may still be above the high
watermark, and a leader cut off from its followers (the checker's
"oneway" fault: its packets to the other nodes dropped, its clients
still served) acknowledged records that the new leader's epoch then
truncated away. Kafka's DelayedProduce waits for a duplicate as for a
fresh append.

On a three-broker cluster (lib/zk_cluster.py; replica.lag.time.max.ms 8 s
and a 40 s session, so brief pauses change no ISR), one partition,
replication factor 3, min.insync.replicas 2, with both followers
SIGSTOPped:
  1. an idempotent acks=all batch (raw Produce v3, TimeoutMs 1 s) gets
     REQUEST_TIMED_OUT; the high watermark has not moved;
  2. the same batch again (the producer's retry) gets REQUEST_TIMED_OUT
     too, not NONE, and the high watermark still has not moved;
then, the followers resumed:
  3. the same batch once more is answered NONE with the offset of the
     first attempt, and the log holds it once (no second append).
Every wait is bounded; every process stops however the test ends.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import Cluster, wait_for  # noqa: E402

# The raw Kafka client of 0620 (its functions read the module's TOPIC).
_spec = importlib.util.spec_from_file_location(
    "replication_leader", os.path.join(HERE, "0620-replication-leader.py"))
r = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(r)
r.TOPIC = "dup"

LAG_MS = 8000
SESSION_S = 40
BOUND = LAG_MS / 1000 * 3 + 30
REQUEST_TIMED_OUT = 7
check = r.check


def init_producer_id(raw):
    """InitProducerId v0 (no transactional id): (producer id, epoch)."""
    rd = raw.call(22, 0, r.kstr(None) + r.s32(60000))
    rd.i32()
    err, pid, epoch = rd.i16(), rd.i64(), rd.i16()
    check(err == 0, "InitProducerId: error %d" % err)
    return pid, epoch


def idempotent_batch(pid, epoch, seq, n, tag):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    import time
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    now = int(time.time() * 1000)
    for i in range(n):
        b.append(i, timestamp=now, key=None, value=("%s-%d" % (tag, i)).encode(), headers=[])
    return bytes(b.build())


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
        fut = admin.create_topics([NewTopic(r.TOPIC, 1, 3, config={"min.insync.replicas": "2"})])
        fut[r.TOPIC].result(60)
        st = wait_for("a state for %s-0" % r.TOPIC,
                      lambda: (lambda s: s if s and s["leader"] >= 0 and
                               sorted(s["isr"]) == [1, 2, 3] else None)(r.zk_state(cl)),
                      BOUND)
        leader = st["leader"]
        fa, fb = [i for i in (1, 2, 3) if i != leader]
        lb = cl.broker(leader)
        lraw = r.Raw(lb.bootstrap)
        wait_for("broker %d leads %s-0" % (leader, r.TOPIC),
                 lambda: r.list_latest(lraw)[0] == 0, BOUND)
        last = r.produce_all(cl.bootstrap(), 5, "warm")
        hw0 = r.list_latest(lraw)[1]
        check(hw0 == last + 1, "high watermark %d after %d acknowledged" % (hw0, last + 1))
        pid, epoch = init_producer_id(lraw)
        rec = idempotent_batch(pid, epoch, 0, 3, "d")
        prod = r.Raw(lb.bootstrap)
        log("leader %d, followers %d and %d paused; producer id %d" % (leader, fa, fb, pid))
        cl.broker(fa).pause()
        cl.broker(fb).pause()
        try:
            e, _ = r.produce_recv(prod, r.produce_send(prod, -1, rec, timeout_ms=1000))
            check(e == REQUEST_TIMED_OUT, "first attempt with both followers paused: error %d, "
                  "not REQUEST_TIMED_OUT" % e)
            check(r.plog_end(lb) == hw0 + 3, "the batch was not appended once")
            e, off = r.produce_recv(prod, r.produce_send(prod, -1, rec, timeout_ms=1000))
            hw = r.list_latest(lraw)[1]
            check(e != 0, "the retried batch was acknowledged at offset %d while the high "
                  "watermark was %d (below its last offset %d)" % (off, hw, hw0 + 2))
            check(e == REQUEST_TIMED_OUT, "retry with both followers paused: error %d" % e)
            check(hw == hw0, "high watermark %d moved with both followers paused" % hw)
            log("steps 1-2: the batch and its retry both wait for the ISR (REQUEST_TIMED_OUT)")
        finally:
            cl.broker(fa).resume()
            cl.broker(fb).resume()
        e, off = r.produce_recv(prod, r.produce_send(prod, -1, rec, timeout_ms=60000))
        check(e == 0 and off == hw0, "the retry after the resume: error %d offset %d (first "
              "attempt at %d)" % (e, off, hw0))
        check(r.list_latest(lraw)[1] >= hw0 + 3, "high watermark below the acknowledged batch")
        check(r.plog_end(lb) == hw0 + 3, "the retried batch was appended again: log end %s"
              % r.plog_end(lb))
        log("step 3: resumed, the retry is acknowledged at %d, once" % off)
        prod.close()
        lraw.close()


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
