# SPDX-License-Identifier: Apache-2.0
"""Sinks 0507: SIGHUP reloads the collector's sinks while the broker keeps
serving, with a confluent-kafka producer (acks=all, idempotent) writing
throughout and getting no error.

1. The collector starts with one file sink, `a`.
2. SIGHUP with `a` and a new sink `b`: b starts (its files fill with the
   topic from the log start) and its group sink.b shows the member
   sink-b-1 with the topic's partitions; a keeps running.
3. SIGHUP with only `b`, its batch and path changed: a stops, its group
   sink.a becomes Empty with 0 members, and every offset below what a
   committed is in a's files (it committed only what was durable; the file
   sink is at-least-once); b restarts with its new options and goes on
   from its committed offsets into the new path.
4. SIGHUP with a file that does not parse: the error is logged and b keeps
   running.
At the end b's files (old path and new) hold every record the producer
wrote. Last, SIGTERM
right after a SIGHUP that removes b while records flow: a clean exit.
"""
import glob
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

TOPIC = "web.reload"
TMP = tempfile.mkdtemp(prefix="trib-0507.")
CONF = os.path.join(TMP, "collector.yaml")
OUT_A = os.path.join(TMP, "a")
OUT_B = os.path.join(TMP, "b")
OUT_B2 = os.path.join(TMP, "b2")

SINK_A = """  - name: a
    type: file
    topics: ["%s"]
    batch: {max_records: 500, linger: 50ms}
    options: {path: "%s"}
""" % (TOPIC, OUT_A)


def sink_b(linger, out=OUT_B):
    return """  - name: b
    type: file
    topics: ["/^web\\\\..*$/"]
    batch: {max_records: 500, linger: %s}
    options: {path: "%s"}
""" % (linger, out)


def read_lines(*dirs):
    seen = {}
    for path in [p for d in dirs for p in glob.glob(os.path.join(d, "*.jsonl"))]:
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    continue  # being written
                r = json.loads(line)
                k = (r["partition"], r["offset"])
                seen[k] = seen.get(k, 0) + 1
    return seen


class Producer(threading.Thread):
    """Produces until stopped; counts delivery errors and produce() failures."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True)
        from confluent_kafka import Producer as P
        self.p = P({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                    "linger.ms": 5})
        self.stop = threading.Event()
        self.errors = []
        self.acked = set()
        self.n = 0

    def cb(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked.add((msg.partition(), msg.offset()))

    def run(self):
        try:
            while not self.stop.is_set():
                for _ in range(50):
                    self.n += 1
                    self.p.produce(TOPIC, value=b'{"n":%d}' % self.n, partition=self.n % 4,
                                   on_delivery=self.cb)
                self.p.poll(0.01)
            if self.p.flush(60) != 0:
                self.errors.append("flush left records undelivered")
        except Exception as e:  # noqa: B902 - reported by the test
            self.errors.append(repr(e))


def describe(c, group):
    out = c.cli("groups", "describe", "--group", group).stdout
    return out.splitlines()[0], out


def reload(c, text):
    sinklib.write_config(CONF, text)
    c.proc.send_signal(signal.SIGHUP)


def log_text(c):
    with open(c.logs[-1], "rb") as f:
        return f.read().decode("utf-8", "replace")


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 4)
    prod = Producer(c.bootstrap)
    prod.start()
    try:
        sinklib.wait_for("sink a writing", lambda: len(read_lines(OUT_A)) > 1000 or
                         len(read_lines(OUT_A)), 60, 0.1)

        # 2. Add b.
        reload(c, "sinks:\n" + SINK_A + sink_b("50ms"))
        sinklib.wait_for("sink b writing", lambda: len(read_lines(OUT_B)) > 1000 or
                         len(read_lines(OUT_B)), 60, 0.1)

        def b_member():
            first, out = describe(c, "sink.b")
            owned = re.findall(r"^%s\s+(\d+)\s+.*\ssink-b-1\s" % re.escape(TOPIC), out, re.M)
            return ("state Stable" in first and "1 member" in first and
                    sorted(map(int, owned)) == [0, 1, 2, 3]) or out
        sinklib.wait_for("sink-b-1 owning the 4 partitions", b_member, 30)
        first, _ = describe(c, "sink.a")
        if "state Stable" not in first or "1 member" not in first:
            raise TestFailure("sink a after adding b: %r" % first)
        log("SIGHUP added sink b: it runs, and a still does")

        # 3. Remove a, change b.
        reload(c, "sinks:\n" + sink_b("20ms", OUT_B2))

        def a_empty():
            first, out = describe(c, "sink.a")
            return ("state Empty" in first and "0 members" in first) or first
        sinklib.wait_for("group sink.a Empty", a_empty, 30)
        sinklib.wait_for("b restarted with its new options", lambda: (
            "[sink:b] stopped; starting it with its new configuration" in log_text(c)), 30)
        n_a = len(read_lines(OUT_A))
        committed = sinklib.group_lag(c, "sink.a")
        if len(committed) != 4:
            raise TestFailure("sink.a offsets after it stopped: %s" % committed)
        seen_a = read_lines(OUT_A)
        for (t, p), (off, _end, _lag) in committed.items():
            missing = [o for o in range(off) if (p, o) not in seen_a]
            if missing:
                raise TestFailure("sink a committed %s-%d up to %d but its files lack %d "
                                  "offsets (first %d)" % (t, p, off, len(missing), missing[0]))
        log("SIGHUP removed sink a: group Empty, offsets %s all in its %d lines"
            % ({p: v[0] for (t, p), v in committed.items()}, n_a))
        sinklib.wait_for("b going on after its restart, into its new path",
                         lambda: len(read_lines(OUT_B2)) > 1000 or len(read_lines(OUT_B2)),
                         60, 0.1)
        if len(read_lines(OUT_A)) != n_a:
            raise TestFailure("sink a still writes after it was removed")

        # 4. A broken file: logged, and b keeps running.
        reload(c, "sinks:\n  - name: b\n    type: [\n")
        sinklib.wait_for("the reload error in the log",
                         lambda: "does not load; the running configuration stays" in log_text(c),
                         30)
        before = len(read_lines(OUT_B2))
        sinklib.wait_for("b still going", lambda: len(read_lines(OUT_B2)) > before + 1000 or
                         len(read_lines(OUT_B2)), 60, 0.1)
        first, _ = describe(c, "sink.b")
        if "state Stable" not in first:
            raise TestFailure("sink b after a bad reload: %r" % first)
    finally:
        prod.stop.set()
        prod.join(90)
    if prod.errors:
        raise TestFailure("the producer got errors during the reloads: %s" % prod.errors[:5])
    log("producer: %d records acknowledged, no errors" % len(prod.acked))

    def all_in_b():
        missing = prod.acked - set(read_lines(OUT_B, OUT_B2))
        return not missing or "%d missing" % len(missing)
    sinklib.wait_for("every record in b's files", all_in_b, 60)
    log("every acknowledged record is in sink b's files (%d before its restart, %d after)"
        % (len(read_lines(OUT_B)), len(read_lines(OUT_B2))))

    # 5. SIGTERM right after a reload that removes b: the stop waits for its drain
    # (run_test checks the exit status and the log for sanitizer reports).
    more = Producer(c.bootstrap)
    more.start()
    sinklib.wait_for("more records", lambda: len(more.acked) > 2000 or len(more.acked), 60, 0.05)
    reload(c, "sinks: []\n")
    more.stop.set()
    more.join(90)
    c.stop("TERM")


sinklib.write_config(CONF, "sinks:\n" + SINK_A)
try:
    run_test(main, extra_args=["-c", CONF])
finally:
    shutil.rmtree(TMP, ignore_errors=True)
