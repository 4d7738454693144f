#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Acknowledged records survive a simulated power loss with storage.fsync: ack,
and the simulation is real enough to lose them with fsync: never.

The collector runs under tests/powerloss/libpowerloss.so, which records
what every fsync/fdatasync made durable in its data dir. Each round,
python3-confluent-kafka produces with acks=all (idempotent, three
partitions, small segments so that segments roll, indexes are written and
directories synced mid-stream) and records every acknowledged (partition,
offset, value); after a seeded number of acknowledgements the collector
is SIGKILLed while requests are in flight, rollback.py rolls every file
back to what the last sync covered, and the collector restarts on that.
A consumer then reads each partition from offset 0: every acknowledged
record must be there with its value at its offset, across all rounds so
far. The topic itself (created through the CLI before the first round)
must survive as well, and so must the data dir, which the collector
creates inside the watched tree.

  fsync: ack    no acknowledged record may be lost in any round
  fsync: never  some acknowledged record must be lost (the collector
                acknowledges from the page cache, which the rollback
                discards: if nothing is lost, the tool does not roll back)

  0222-powerloss-collector.py [--rounds N] [--seed S] [--policy ack|never]
defaults: 3 rounds per policy, seed 2222, both policies (the chaos label
runs more rounds). TRIB_POWERLOSS_TORN=1 also keeps random prefixes of
unsynced appends (rollback.py --torn), which ack must survive too.
"""
import argparse
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "powerloss"))
import rollback as powerloss  # noqa: E402
from tributary_harness import (SKIP, Collector, Skip, TestFailure, broker_available,  # noqa: E402
                               log)

PARTITIONS = 3
TOPIC = "powerloss"


def produce_until_killed(c, rnd, kill_after, acked):
    """Produces until kill_after acknowledgements, then SIGKILLs the collector
    with requests in flight. Appends (partition, offset, value) to acked."""
    from confluent_kafka import Producer
    errors = []
    got = [0]

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
            got[0] += 1
        else:
            errors.append(err)

    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "batch.num.messages": 50, "message.timeout.ms": 10000,
                  "max.in.flight.requests.per.connection": 5,
                  "queue.buffering.max.messages": 2000})
    seq = 0
    deadline = time.monotonic() + 60
    while got[0] < kill_after:
        if time.monotonic() > deadline:
            raise TestFailure("round %d: only %d of %d records acknowledged in 60 s; errors %s"
                              % (rnd, got[0], kill_after, errors[:3]))
        value = b"r%d-%06d-" % (rnd, seq) + b"x" * (seq % 200)
        try:
            p.produce(TOPIC, key=b"k%d" % (seq % 17), value=value, on_delivery=on_delivery)
            seq += 1
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    c.proc = None
    # Reports for acknowledgements that arrived before the kill are still
    # queued: take them, then give up on everything else.
    p.poll(0.5)
    p.purge()
    p.flush(5)
    log("round %d: SIGKILL after %d acknowledged, %d produced" % (rnd, got[0], seq))


def read_all(c):
    """{(partition, offset): value} for every partition, read from offset 0
    up to the high watermark; a partition that yields nothing for 15 s
    ends the read (its missing records then count as lost)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "powerloss-check",
                     "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        ends = {}
        for part in range(PARTITIONS):
            try:
                _lo, hi = cons.get_watermark_offsets(TopicPartition(TOPIC, part), timeout=30)
            except KafkaException as e:
                log("reading back: partition %d: %s" % (part, e))
                return {}, ends  # the topic is gone: every record counts as lost
            ends[part] = hi
        cons.assign([TopicPartition(TOPIC, part, 0) for part in range(PARTITIONS)])
        got = {}
        done = set(part for part in range(PARTITIONS) if ends[part] == 0)
        last_progress = time.monotonic()
        while len(done) < PARTITIONS:
            if time.monotonic() - last_progress > 15:
                log("reading back: partitions %s yield nothing below their end %s"
                    % (sorted(set(range(PARTITIONS)) - done), ends))
                break
            m = cons.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    if m.offset() >= ends[m.partition()]:
                        done.add(m.partition())
                    continue
                raise TestFailure("reading back: %s" % m.error())
            got[(m.partition(), m.offset())] = m.value()
            last_progress = time.monotonic()
        return got, ends
    finally:
        cons.close()


def run_policy(policy, rounds, seed, torn):
    rng = random.Random("%s-%d" % (policy, seed))
    c = None
    conf = None
    lost_total = 0
    try:
        c = Collector()
        conf = os.path.join(c.tmp, "collector.yaml")
        with open(conf, "w") as f:
            f.write("storage:\n  fsync: %s\n" % policy)
        c.extra = ["--config", conf]
        # The collector creates its data dir itself, inside the watched tree:
        # the directories it makes must be durable too.
        root = os.path.join(c.tmp, "root")
        os.makedirs(root)
        os.rmdir(c.data)
        c.data = os.path.join(root, "data")
        shadow = os.path.join(c.tmp, "shadow")
        c.env = powerloss.shim_env(shadow, [root])
        c.start()
        c.cli("topics", "create", "--topic", TOPIC, "--partitions", str(PARTITIONS),
              "--config", "segment.bytes=65536", "--config", "segment.index.bytes=4096")
        acked = []
        for rnd in range(rounds):
            produce_until_killed(c, rnd, rng.randint(200, 3000), acked)
            summary = powerloss.rollback(shadow, rng.randint(0, 1 << 30) if torn else None)
            log("round %d: rolled back: %s" % (rnd, summary))
            c.start()
            got, ends = read_all(c)
            lost = [(p, o, v[:12]) for p, o, v in acked if got.get((p, o)) != v]
            log("round %d (fsync: %s): %d acknowledged so far, %d read back (ends %s), %d lost"
                % (rnd, policy, len(acked), len(got), ends, len(lost)))
            if lost and policy == "ack":
                raise TestFailure("fsync: ack, round %d: %d acknowledged records lost after "
                                  "the power loss, e.g. (partition, offset, value) %s"
                                  % (rnd, len(lost), lost[:5]))
            lost_total += len(lost)
            # Lost records are not expected back in later rounds.
            acked = [(p, o, v) for p, o, v in acked if got.get((p, o)) == v]
        c.stop("TERM")
        if policy == "never" and lost_total == 0:
            raise TestFailure("fsync: never lost no acknowledged record in %d rounds: the "
                              "power-loss rollback did not roll anything back" % rounds)
        log("fsync: %s: %d acknowledged records lost over %d rounds%s"
            % (policy, lost_total, rounds, " (as it must)" if policy == "never" else ""))
        c.check_logs()
        return True
    except BaseException:
        if c is not None:
            if c.proc is not None:
                try:
                    c.stop("TERM")
                except TestFailure as e:
                    log("while stopping: %s" % e)
            c.dump_logs()
            log("kept %s" % c.tmp)
            c = None
        raise
    finally:
        if c is not None and not os.environ.get("TRIB_KEEP_TMP"):
            import shutil
            shutil.rmtree(c.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2222)
    ap.add_argument("--policy", choices=["ack", "never"], action="append")
    args = ap.parse_args()
    torn = bool(os.environ.get("TRIB_POWERLOSS_TORN"))
    try:
        broker_available()
        import confluent_kafka  # noqa: F401
    except ImportError:
        log("SKIP: python3-confluent-kafka is missing")
        return SKIP
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    try:
        for policy in args.policy or ["ack", "never"]:
            run_policy(policy, args.rounds, args.seed, torn)
    except TestFailure as e:
        log("FAIL: %s" % e)
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
