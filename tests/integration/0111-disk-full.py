#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A full disk: the collector answers KAFKA_STORAGE_ERROR, stays up, says so,
loses nothing acknowledged and recovers by itself when space returns.

The collector's data directory is a 24 MiB tmpfs (the test mounts it; it
fails instead of skipping when CI=true and mounting is impossible). An
8 MiB ballast file is written first. A python3-confluent-kafka producer
(acks=all, no retries, so every failure reaches its delivery report)
fills topic "fill" with 60 KiB records until the collector answers
KAFKA_STORAGE_ERROR; a second ballast takes the last free pages, and two
pages are given back. Then topic "second" is created and fed small
records, one request each: its first entries in the segment index need
blocks the disk no longer has (the old collector died there with SIGBUS).
Checked while full: every produce ends in an ack or KAFKA_STORAGE_ERROR,
never anything else; the collector is alive; /health answers 503 with
the reason; /metrics has the storage error gauge and failed appends by
reason; the failed-append log lines are rate-limited; every acknowledged
record is read back, and nothing that failed is there.

A SIGTERM then still stops it with status 0, and it starts again on the
full disk. Then the ballast goes: produce works again without a restart
and /health is 200. Last, the disk is filled again and the collector is killed
(SIGKILL) and restarted on the still-full disk: it must start, keep every
acknowledged record, and take produce again once space is freed.
"""
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import (SKIP, Collector, Skip, TestFailure, broker_available,  # noqa: E402
                               fill_file, log, mount_tmpfs, require_mount, umount)

STORAGE_ERROR = 56
BIG = 60 * 1024
MAX_PRODUCE = 2000


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric_values(text, name):
    """{labels: value} of every sample of a metric."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


class Producer:
    """One record per request, each waited for: ok or the error code."""

    def __init__(self, bootstrap):
        from confluent_kafka import Producer as P
        self.p = P({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                    "enable.idempotence": False, "linger.ms": 0,
                    "message.timeout.ms": 20000, "request.timeout.ms": 15000,
                    "message.max.bytes": 1000000})

    def send(self, topic, value):
        res = []
        self.p.produce(topic, value=value, partition=0,
                       on_delivery=lambda err, msg: res.append(err))
        self.p.flush(30)
        if not res:
            raise TestFailure("no delivery report for a record to %s" % topic)
        err = res[0]
        if err is None:
            return 0
        return err.code()


def consume_all(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "disk-full-check",
                  "enable.auto.commit": False, "fetch.max.bytes": 4 << 20})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        c.assign([TopicPartition(topic, 0, lo)])
        out = []
        pos = lo
        polls = 0
        while pos < hi:
            polls += 1
            if polls > 2000:
                raise TestFailure("%s: reading stopped at offset %d of %d" % (topic, pos, hi))
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                raise TestFailure("%s: consume error %s" % (topic, m.error()))
            out.append(m.value())
            pos = m.offset() + 1
        return out
    finally:
        c.close()


class State:
    def __init__(self):
        self.acked = {}  # topic -> [values]
        self.failed = {}

    def note(self, topic, value, code):
        if code == 0:
            self.acked.setdefault(topic, []).append(value)
        elif code == STORAGE_ERROR:
            self.failed.setdefault(topic, []).append(value)
        else:
            raise TestFailure("a produce to %s failed with error %d, not KAFKA_STORAGE_ERROR"
                              % (topic, code))

    def verify(self, c, topic):
        got = consume_all(c.bootstrap, topic)
        want = self.acked.get(topic, [])
        if got != want:
            lost = [v[:24] for v in want if v not in set(got)]
            extra = [v[:24] for v in got if v not in set(want)]
            raise TestFailure("%s: read %d records, %d acknowledged; missing %r, unexpected %r"
                              % (topic, len(got), len(want), lost[:3], extra[:3]))
        log("%s: all %d acknowledged records read back, none of the %d failed ones"
            % (topic, len(want), len(self.failed.get(topic, []))))


def value(tag, i, size):
    head = b"%s-%06d|" % (tag.encode(), i)
    return head + b"v" * (size - len(head))


def fill_topic(c, st, prod, topic, tag, size, start=0):
    """Produces until the collector answers KAFKA_STORAGE_ERROR; returns the next index."""
    i = start
    while True:
        if i - start > MAX_PRODUCE:
            raise TestFailure("%s: %d records produced and the disk is still not full"
                              % (topic, i - start))
        code = prod.send(topic, value(tag, i, size))
        st.note(topic, value(tag, i, size), code)
        i += 1
        if code == STORAGE_ERROR:
            return i
        if not c.alive():
            raise TestFailure("the collector died while producing to %s" % topic)


def check_unhealthy(c):
    status, body = get("http://%s/health" % c.metrics)
    if status == 200:
        raise TestFailure("/health answers 200 while the disk is full: %r" % body)
    if "space" not in body:
        raise TestFailure("/health %d does not say why: %r" % (status, body))
    log("/health while full: %d %r" % (status, body.strip()))
    _, text = get("http://%s/metrics" % c.metrics)
    failed = metric_values(text, "tributary_storage_append_errors_total")
    if sum(v for k, v in failed.items() if 'reason="no_space"' in k) < 1:
        raise TestFailure("no failed append counted for no_space: %r" % failed)
    gauge = metric_values(text, "tributary_storage_partition_error")
    if not any(v == 1 and 'reason="no_space"' in k for k, v in gauge.items()):
        raise TestFailure("no partition storage error gauge: %r" % gauge)
    log("/metrics while full: failed appends %r, partitions in error %r" % (failed, gauge))


def wait_healthy(c):
    for _ in range(300):
        status, body = get("http://%s/health" % c.metrics)
        if status == 200:
            return
        if not c.alive():
            raise TestFailure("the collector died")
        time.sleep(0.1)
    raise TestFailure("/health did not recover after space came back: %d %r" % (status, body))


def scenario(c, mnt):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    fs = admin.create_topics([NewTopic("fill", 1, 1, config={"segment.bytes": "2097152"})])
    fs["fill"].result(30)
    ballast = os.path.join(mnt, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * (8 << 20))
    st = State()
    prod = Producer(c.bootstrap)
    n_fill = fill_topic(c, st, prod, "fill", "fill", BIG)
    log("fill: %d records acknowledged, then KAFKA_STORAGE_ERROR"
        % len(st.acked.get("fill", [])))

    # The last free pages go to a second ballast: a topic created now fails
    # cleanly (KAFKA_STORAGE_ERROR) or succeeds, and the collector stays up.
    top = os.path.join(mnt, "ballast-top")
    fill_file(top)
    fs = admin.create_topics([NewTopic("refused", 1, 1)])
    try:
        fs["refused"].result(30)
        log("refused: created on the full disk")
    except Exception as e:  # noqa: BLE001 - checked below
        code = e.args[0].code() if e.args and hasattr(e.args[0], "code") else None
        if code != STORAGE_ERROR:
            raise TestFailure("creating a topic on a full disk: %r, not KAFKA_STORAGE_ERROR" % e)
        log("refused: creation on the full disk answered %s" % e.args[0].str())
    if not c.alive():
        raise TestFailure("the collector died creating a topic on a full disk")
    # Room for a topic's files, which then takes the rest; three pages come back.
    os.truncate(ballast, os.path.getsize(ballast) - (256 << 10))
    fs = admin.create_topics([NewTopic("second", 1, 1)])
    fs["second"].result(30)
    fill_file(top)
    os.truncate(top, max(0, os.path.getsize(top) - 12288))
    n_second = 0
    for _ in range(200):
        code = prod.send("second", value("second", n_second, 300))
        if not c.alive():
            raise TestFailure("the collector died producing to a new topic on a full disk "
                              "(status %s)" % c.proc.poll())
        st.note("second", value("second", n_second, 300), code)
        n_second += 1
        if code == STORAGE_ERROR:
            break
    else:
        raise TestFailure("second: 200 records fit on a full disk")
    # A few more failures, to see the log lines rate-limited.
    for _ in range(30):
        st.note("second", value("second", n_second, 300),
                prod.send("second", value("second", n_second, 300)))
        n_second += 1
    if not c.alive():
        raise TestFailure("the collector died")
    log("second: %d acknowledged, %d failed with KAFKA_STORAGE_ERROR"
        % (len(st.acked.get("second", [])), len(st.failed.get("second", []))))
    check_unhealthy(c)
    with open(c.logs[-1], "rb") as f:
        text = f.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if "No space left on device" in line]
    if len(lines) > 20:
        raise TestFailure("%d log lines about the full disk for %d failed appends: not rate-limited"
                          % (len(lines), len(st.failed["fill"]) + len(st.failed["second"])))
    st.verify(c, "fill")
    st.verify(c, "second")

    # A stop on the full disk is still a clean stop (exit 0; its checkpoints
    # may not fit, then the next start recovers).
    c.restart("TERM")
    prod = Producer(c.bootstrap)
    st.verify(c, "fill")
    st.verify(c, "second")

    # Space comes back: produce works again, no restart.
    os.unlink(top)
    os.unlink(ballast)
    for topic, tag, size, i in (("second", "second", 300, n_second), ("fill", "fill", BIG, n_fill)):
        for k in range(5):
            code = prod.send(topic, value(tag, i + k, size))
            st.note(topic, value(tag, i + k, size), code)
            if code:
                raise TestFailure("%s: produce after space came back: error %d" % (topic, code))
    n_second += 5
    n_fill += 5
    wait_healthy(c)
    log("space back: produce works again and /health is 200, without a restart")
    reserve = os.path.join(mnt, ".space-reserve")
    for _ in range(300):
        if os.path.exists(reserve) and os.path.getsize(reserve) == 4 << 20:
            break
        time.sleep(0.1)
    else:
        raise TestFailure("the space reserve was not taken again once the disk had room")
    st.verify(c, "fill")
    st.verify(c, "second")

    # Full again, then killed and restarted on the full disk.
    n_fill = fill_topic(c, st, prod, "fill", "fill", BIG, n_fill)
    fill_file(top)
    if shutil.disk_usage(mnt).free > 0:
        raise TestFailure("the disk is not full before the restart")
    c.restart("KILL")
    with open(c.logs[-1]) as f:
        if "gave up the" not in f.read():
            raise TestFailure("the restart on a full disk did not give up the space reserve")
    log("restarted on a full disk (the reserve given up)")
    prod = Producer(c.bootstrap)
    st.verify(c, "fill")
    st.verify(c, "second")
    os.unlink(top)
    for k in range(3):
        code = prod.send("second", value("second", n_second + k, 300))
        st.note("second", value("second", n_second + k, 300), code)
        if code:
            raise TestFailure("second: produce after the restart and freeing space: error %d"
                              % code)
    wait_healthy(c)
    st.verify(c, "second")
    log("restart on a full disk: started, nothing acknowledged lost, produce works after freeing")


def main():
    rc = 0
    c = None
    mounted = None
    try:
        broker_available()
        require_mount()
        c = Collector()
        ok, why = mount_tmpfs(c.data, "24m")
        if not ok:
            raise TestFailure("mount tmpfs on %s: %s" % (c.data, why))
        mounted = c.data
        c.start()
        scenario(c, c.data)
        c.stop("TERM")
        c.check_logs()
    except Skip as e:
        log("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            import traceback
            traceback.print_exc()
        rc = 1
    finally:
        if c is not None and c.proc is not None:
            if c.proc.poll() is not None:
                log("FAIL: the collector died, status %s" % c.proc.returncode)
                c.proc = None
                rc = 1
            else:
                try:
                    c.stop("TERM")
                except BaseException as e:  # noqa: B902
                    log("FAIL: %s" % e)
                    rc = 1
        if mounted:
            umount(mounted)
        if c is not None:
            if rc not in (0, SKIP):
                c.dump_logs()
                log("kept %s" % c.tmp)
            elif not os.environ.get("TRIB_KEEP_TMP"):
                shutil.rmtree(c.tmp, ignore_errors=True)
    if rc == 0:
        log("PASS")
    sys.exit(rc)


if __name__ == "__main__":
    main()
