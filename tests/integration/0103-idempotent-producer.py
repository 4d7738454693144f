#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Idempotent producers: librdkafka end to end, then the sequence rules raw,
across SIGKILL and SIGTERM restarts.

1. python3-confluent-kafka with enable.idempotence=true (InitProducerId v4,
   acks=all, up to 5 in flight, retries) writes 5,000 keyed records into a
   4-partition topic: every one is stored exactly once.
2. Raw, with a producer id from InitProducerId: sequence 0 gets offset 0; a
   retry of that batch gets offset 0 again and appends nothing; the next
   sequence continues; a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER (45); an
   unknown producer id starting mid-sequence UNKNOWN_PRODUCER_ID (59); a
   new epoch must start at sequence 0 (45 otherwise) and fences the old one
   (INVALID_PRODUCER_EPOCH, 47); a TransactionalId is refused. A batch
   pipelined behind one the connection refused retriably gets that error,
   not 45 (pipelined_behind_refusal).
3. The collector is killed with SIGKILL and restarted: a retry of the last
   batch still gets its original offset (the producer state was rebuilt
   from the log), the sequence continues, the old epoch stays fenced, and
   a new producer id is not one handed out before. The same after SIGTERM
   (state from the snapshot).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, batch, count_records  # noqa: E402
from tributary_harness import TestFailure, check_records, log, make_records, run_test  # noqa: E402


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: got %r, expected %r" % (what, got, want))
    log("%s: %r" % (what, got))


def librdkafka_round_trip(c):
    from confluent_kafka import Consumer, Producer, TopicPartition
    errors, acked = [], [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    p = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True,
                  "linger.ms": 2, "batch.num.messages": 200})
    records = make_records(50, 100)
    for k, v in records:
        while True:
            try:
                p.produce("idem-rdk", key=k, value=v, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(60) or errors:
        raise TestFailure("idempotent producer: errors %s" % errors[:3])
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "unused",
                     "enable.auto.commit": False})
    md = cons.list_topics("idem-rdk", timeout=10)
    parts = sorted(md.topics["idem-rdk"].partitions)
    cons.assign([TopicPartition("idem-rdk", p, 0) for p in parts])
    got = []
    idle = 0
    while len(got) < len(records) and idle < 20:
        msgs = cons.consume(1000, timeout=0.5)
        idle = idle + 1 if not msgs else 0
        for m in msgs:
            if m.error():
                raise TestFailure("consume: %s" % m.error())
            got.append((m.key(), m.value()))
    cons.close()
    problems = check_records(got, 50, 100)
    if problems:
        raise TestFailure("idempotent round trip: %s" % problems[:5])
    log("librdkafka idempotent producer: %d records exactly once" % len(got))


def pipelined_behind_refusal(c):
    """A batch refused retriably before its append (here NOT_ENOUGH_REPLICAS:
    acks=all on a topic whose min.insync.replicas a single node cannot meet)
    and the producer's next batch on the same connection, which passes the
    checks (acks=1): the next one gets the same retriable error, not
    OUT_OF_ORDER_SEQUENCE_NUMBER, which librdkafka 2.0.2 answers with
    an epoch bump that re-sends, as new, batches an earlier leader already
    wrote. Both are then retried in order and stored once each. Another
    connection, which refused nothing, still gets 59 (the producer is not
    known yet) and, once it is, a real gap still gets 45."""
    conn = Conn(c.bootstrap)
    expect("create idem-gap", conn.create_topic("idem-gap", 1, configs={"min.insync.replicas": "2"}),
           (0, None))
    err, pid, epoch = conn.init_producer_id()
    expect("InitProducerId", (err, epoch), (0, 0))

    def send(seq, acks, on=conn):
        return on.produce("idem-gap", 0, batch(2, "g%d" % seq, pid=pid, epoch=0, seq=seq),
                          acks=acks, version=7)

    expect("seq 0, acks=all: refused before the append", send(0, -1)[0], 19)
    expect("seq 2 behind it on the same connection", send(2, 1)[0], 19)
    expect("seq 2 again", send(2, 1)[0], 19)
    other = Conn(c.bootstrap)
    expect("seq 2 on another connection: unknown producer mid-sequence", send(2, 1, on=other)[0], 59)
    other.close()
    expect("seq 0 retried with acks=1", send(0, 1), (0, 0))
    expect("seq 2 retried", send(2, 1), (0, 2))
    expect("seq 6 on the same connection: a gap again", send(6, 1)[0], 45)
    # acks=1: the high watermark follows the fsync (storage.fsync: ack).
    deadline = time.monotonic() + 20
    while conn.fetch("idem-gap", 0, 0)[1] < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    err, hw, recs = conn.fetch("idem-gap", 0, 0)
    expect("stored once each", (hw, count_records(recs)), (4, 4))
    conn.close()


def main(c):
    conn = Conn(c.bootstrap)
    expect("create idem-rdk", conn.create_topic("idem-rdk", 4), (0, None))
    librdkafka_round_trip(c)

    expect("create idem", conn.create_topic("idem", 1), (0, None))
    err, pid, epoch = conn.init_producer_id()
    expect("InitProducerId", (err, epoch), (0, 0))
    err2, pid2, _ = conn.init_producer_id()
    if err2 or pid2 == pid:
        raise TestFailure("a second InitProducerId gave %d/%d" % (err2, pid2))
    expect("InitProducerId with a TransactionalId", conn.init_producer_id("txn")[0], 42)

    def send(seq, n=5, ep=0, p=pid):
        return conn.produce("idem", 0, batch(n, "s%d" % seq, pid=p, epoch=ep, seq=seq), acks=-1,
                            version=7)

    expect("seq 0", send(0), (0, 0))
    expect("seq 0 again (retry)", send(0), (0, 0))
    expect("seq 5", send(5), (0, 5))
    expect("seq 5 again", send(5), (0, 5))
    expect("seq 0 once more (still remembered)", send(0), (0, 0))
    expect("gap: seq 20", send(20)[0], 45)
    expect("unknown producer mid-sequence", send(3, p=424242)[0], 59)
    expect("new epoch not at 0", send(3, ep=1)[0], 45)
    expect("new epoch at 0", send(0, ep=1), (0, 10))
    expect("old epoch fenced", send(10, ep=0)[0], 47)
    expect("second producer", send(0, p=pid2), (0, 15))
    expect("log end", conn.fetch("idem", 0, 0)[1], 20)
    conn.close()
    pipelined_behind_refusal(c)

    for sig in ("KILL", "TERM"):
        c.restart(sig)
        conn = Conn(c.bootstrap)
        base = 20 if sig == "KILL" else 25
        expect("after SIG%s: retry of epoch 1 seq 0" % sig, send(0, ep=1), (0, 10))
        expect("after SIG%s: second producer's retry" % sig, send(0, p=pid2), (0, 15))
        nxt = 5 if sig == "KILL" else 10
        expect("after SIG%s: next sequence" % sig, send(nxt, ep=1), (0, base))
        expect("after SIG%s: old epoch fenced" % sig, send(10, ep=0)[0], 47)
        err, pid3, _ = conn.init_producer_id()
        if err or pid3 <= pid2:
            raise TestFailure("after SIG%s: InitProducerId gave %d (error %d), reusing ids"
                              % (sig, pid3, err))
        err, hw, recs = conn.fetch("idem", 0, 0)
        expect("after SIG%s: records stored" % sig, (hw, count_records(recs)), (base + 5, base + 5))
        conn.close()


if __name__ == "__main__":
    run_test(main)
