# SPDX-License-Identifier: Apache-2.0
"""On a single collector with storage.fsync: ack, consumers read only what is on disk.

The high watermark a consumer reads up to is capped at the durable
offset (as a replicated leader caps it): otherwise a consumer could read
a record that a power loss then takes away, and after the restart that
offset holds another record (the checker's stale read, two values at one
offset). The fsync's completion moves the high watermark and wakes
long-polling fetches.

The collector runs under tests/powerloss/libpowerloss.so with
POWERLOSS_HOLD: while the hold file exists every fsync/fdatasync waits,
so the test decides when the log becomes durable:
  1. a record produced with acks=1 while fsyncs are held is in the log
     but not readable: Fetch answers the old high watermark and no
     records, ListOffsets latest is the old end;
  2. a long-poll Fetch (MaxWaitMs 120 s, the socket gives up after 60 s)
     parked at that offset returns the record once the hold is lifted,
     with the high watermark past it;
  3. another record produced while held, then a power loss (SIGKILL and
     rollback.py): it is gone, and nothing a consumer was shown is: the
     log after the restart still holds every record Fetch returned.
"""
import importlib.util
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "powerloss"))
import rollback as powerloss  # noqa: E402
from tributary_harness import (SKIP, Collector, Skip, TestFailure, broker_available,  # noqa: E402
                               log)

# The raw Kafka client of 0620 (its functions read the module's TOPIC).
_spec = importlib.util.spec_from_file_location(
    "replication_leader", os.path.join(HERE, "0620-replication-leader.py"))
r = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(r)
r.TOPIC = "durable"
check = r.check


def values(recs):
    """The record values in a Fetch's record bytes (kafka-python's decoder)."""
    from kafka.record.default_records import DefaultRecordBatch
    import struct
    out, at = [], 0
    while at + 61 <= len(recs):
        length = struct.unpack_from(">i", recs, at + 8)[0]
        batch = DefaultRecordBatch(bytes(recs[at:at + 12 + length]))
        for rec in batch:
            out.append(rec.value.decode())
        at += 12 + length
    return out


def produce1(raw, value):
    """acks=1: answered after the append (page cache); the base offset."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    import time
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    b.append(0, timestamp=int(time.time() * 1000), key=None, value=value.encode(), headers=[])
    e, off = r.produce_recv(raw, r.produce_send(raw, 1, bytes(b.build())))
    check(e == 0, "acks=1 produce of %s: error %d" % (value, e))
    return off


def wait_hw(raw, want, what):
    from zk_cluster import wait_for
    return wait_for(what, lambda: r.list_latest(raw)[1] == want, 60)


def run(c, hold):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(r.TOPIC, 1, 1)])[r.TOPIC].result(60)
    raw = r.Raw(c.bootstrap)
    from zk_cluster import wait_for
    wait_for("the topic is served", lambda: r.list_latest(raw)[0] == 0, 60)
    check(produce1(raw, "a") == 0, "first record not at 0")
    wait_hw(raw, 1, "the first record durable and readable")
    seen = {}

    # 1. Held in the page cache: in the log, not readable.
    open(hold, "w").close()
    check(produce1(raw, "b") == 1, "second record not at 1")
    err, hw, recs = r.fetch(raw, 1)
    check(err == 0 and hw == 1 and not recs,
          "a consumer read past the durable offset: high watermark %d, records %s"
          % (hw, values(recs)))
    check(r.list_latest(raw)[1] == 1, "ListOffsets latest past the durable offset")
    log("step 1: a record not yet on disk is not readable (high watermark 1)")

    # 2. A long poll parked there wakes when the fsync completes.
    poll = r.Raw(c.bootstrap)
    import threading
    result = {}

    def long_poll():
        try:
            result["v"] = r.fetch(poll, 1, max_wait=120000)
        except BaseException as e:  # noqa: B902 - reported by the main thread
            result["e"] = e
    t = threading.Thread(target=long_poll)
    t.start()
    os.unlink(hold)
    t.join(90)
    check(not t.is_alive(), "the long-poll Fetch did not return")
    if "e" in result:
        raise TestFailure("the long-poll Fetch failed: %s (not woken by the fsync?)"
                          % result["e"])
    err, hw, recs = result["v"]
    check(err == 0 and hw == 2 and values(recs) == ["b"],
          "long poll after the fsync: error %d, high watermark %d, records %s"
          % (err, hw, values(recs)))
    for i, v in enumerate(values(r.fetch(raw, 0)[2])):
        seen[i] = v
    poll.close()
    log("step 2: the fsync's completion woke the long poll: %s" % seen)

    # 3. Held again, then a power loss: the undurable record goes, nothing seen does.
    open(hold, "w").close()
    check(produce1(raw, "c") == 2, "third record not at 2")
    err, hw, recs = r.fetch(raw, 0)
    check(hw == 2 and values(recs) == ["a", "b"],
          "before the power loss: high watermark %d, records %s" % (hw, values(recs)))
    for i, v in enumerate(values(recs)):
        seen[i] = v
    raw.close()
    c.stop("KILL")
    os.unlink(hold)
    powerloss.rollback(c.shadow)
    c.start()
    raw = r.Raw(c.bootstrap)
    wait_for("the topic is served again", lambda: r.list_latest(raw)[0] == 0, 60)
    err, hw, recs = r.fetch(raw, 0)
    after = dict(enumerate(values(recs)))
    for off, v in seen.items():
        check(after.get(off) == v, "offset %d was read as %s, after the power loss it holds %s"
              % (off, v, after.get(off)))
    log("step 3: after the power loss the log is %s; every record read is still there" % after)
    raw.close()


def main():
    broker_available()
    try:
        import confluent_kafka  # noqa: F401
        import kafka  # noqa: F401
    except ImportError as e:
        raise Skip("python client missing: %s" % e)
    lib = powerloss.library()
    if not os.path.exists(lib):
        raise Skip("%s not built" % lib)
    tmp = tempfile.mkdtemp(prefix="trib-0631.")
    hold = os.path.join(tmp, "hold")
    shadow = os.path.join(tmp, "shadow")
    c = Collector()
    env = powerloss.shim_env(shadow, [c.data])
    env["POWERLOSS_HOLD"] = hold
    c.env = env
    c.shadow = shadow
    ok = False
    try:
        c.start()
        run(c, hold)
        c.stop("TERM")
        ok = True
    finally:
        if os.path.exists(hold):
            os.unlink(hold)
        if c.proc is not None:
            try:
                c.stop("KILL")
            except TestFailure as e:
                log("stopping: %s" % e)
        if not ok:
            c.dump_logs()
            log("kept %s and %s" % (c.tmp, tmp))
        else:
            shutil.rmtree(c.tmp, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)


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
