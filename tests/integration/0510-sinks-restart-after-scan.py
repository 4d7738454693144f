# SPDX-License-Identifier: Apache-2.0
"""Sinks 0510: a sink restarted by a reload gets its partitions even when a
topic scan ran while its predecessor drained.

A reload that changes a sink starts its successor only once the old one has
no batch in flight; the successor reuses the member id (sink-b-<node>) of
group sink.b. Here the old b's batch is held by the receiver (an `http` sink
against a server in this script) while:

1. SIGHUP removes sink a, changes b's URL and keeps c;
2. a new topic makes the partition scan run (c logs its new partition), with
   b still draining;
3. the held POST is answered: b stops and its successor starts.

Then the successor must deliver: every produced record reaches the receiver
(old URL or new), the new URL gets records, and sink-b-1 owns both partitions
of group sink.b. (Before the successor scheduled its own scan, it stayed a
member with no partitions forever once a scan had run during the drain.)
"""
import glob
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

TOPIC = "web.restart"
LATE = "late.scan"
TMP = tempfile.mkdtemp(prefix="trib-0510.")
CONF = os.path.join(TMP, "collector.yaml")
OUT_A = os.path.join(TMP, "a")
OUT_C = os.path.join(TMP, "c")

lock = threading.Lock()
seen = {"/one": {}, "/two": {}}  # path -> {(partition, offset): count}
held = [0]                        # POSTs to /one waiting for `gate`
gate = threading.Event()
gate.set()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if self.path == "/one" and not gate.is_set():
            with lock:
                held[0] += 1
            gate.wait(120)
        with lock:
            got = seen.setdefault(self.path, {})
            for line in data.splitlines():
                r = json.loads(line)
                k = (r["partition"], r["offset"])
                got[k] = got.get(k, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def config(port, path, with_a):
    a = """  - name: a
    type: file
    topics: ["%s"]
    batch: {max_records: 100, linger: 20ms}
    options: {path: "%s"}
""" % (TOPIC, OUT_A)
    return "sinks:\n" + (a if with_a else "") + """  - name: b
    type: http
    topics: ["/^web\\\\..*$/"]
    batch: {max_records: 100, linger: 20ms}
    retry: {initial: 50ms, max: 500ms}
    options: {url: "http://127.0.0.1:%d%s", timeout: 120s}
  - name: c
    type: file
    topics: ["/^late\\\\..*$/"]
    batch: {max_records: 100, linger: 20ms}
    options: {path: "%s"}
""" % (port, path, OUT_C)


def log_text(c):
    with open(c.logs[-1], "rb") as f:
        return f.read().decode("utf-8", "replace")


def delivered():
    with lock:
        return set(seen["/one"]) | set(seen["/two"])


def main(c):
    try:
        steps(c)
    finally:
        gate.set()  # a held POST would hold up the collector's stop


def steps(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 2)
    produced = set(sinklib.produce_events(c.bootstrap, TOPIC, 0, 200, 2))
    sinklib.wait_for("b delivering to /one", lambda: not (produced - delivered()) or
                     "%d missing" % len(produced - delivered()), 60, 0.1)
    sinklib.wait_for("a writing", lambda: len(glob.glob(os.path.join(OUT_A, "*.jsonl"))) > 0,
                     60, 0.1)

    # b's next batch stays in flight until the gate opens.
    gate.clear()
    produced |= set(sinklib.produce_events(c.bootstrap, TOPIC, 200, 100, 2))
    sinklib.wait_for("a POST to /one held", lambda: held[0] > 0 or held[0], 60, 0.05)

    # 1. Remove a, change b (it drains first), keep c.
    sinklib.write_config(CONF, config(srv.server_address[1], "/two", False))
    c.proc.send_signal(signal.SIGHUP)
    sinklib.wait_for("a stopped", lambda: "[sink:a] stopped" in log_text(c), 30, 0.05)

    # 2. A partition scan while b drains.
    sinklib.create_topic(c.bootstrap, LATE, 1)
    sinklib.wait_for("c's scan of %s" % LATE, lambda: (
        re.search(r"\[sink:c\] %s-0: delivering from offset" % re.escape(LATE), log_text(c))
        is not None), 30, 0.05)
    if "[sink:b] stopped" in log_text(c):
        raise TestFailure("b stopped with its POST still held")
    log("SIGHUP removed a and changed b; a scan ran while b drained")

    # 3. b's batch is answered: it stops, and its successor starts.
    gate.set()
    sinklib.wait_for("b restarted", lambda: (
        "[sink:b] stopped; starting it with its new configuration" in log_text(c)), 30, 0.05)
    produced |= set(sinklib.produce_events(c.bootstrap, TOPIC, 300, 200, 2))

    def all_delivered():
        missing = produced - delivered()
        with lock:
            n2 = len(seen["/two"])
        return (not missing and n2 > 0) or "%d missing, %d at /two" % (len(missing), n2)
    sinklib.wait_for("b's successor delivering to /two", all_delivered, 30, 0.1)

    def b_member():
        out = c.cli("groups", "describe", "--group", "sink.b").stdout
        first = out.splitlines()[0] if out else ""
        owned = re.findall(r"^%s\s+(\d+)\s+.*\ssink-b-1\s" % re.escape(TOPIC), out, re.M)
        return ("state Stable" in first and "1 member" in first and
                sorted(map(int, owned)) == [0, 1]) or out
    sinklib.wait_for("sink-b-1 owning both partitions again", b_member, 30)
    with lock:
        log("b's successor delivered %d records to /two; nothing lost across the restart"
            % len(seen["/two"]))


srv = Server(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sinklib.write_config(CONF, config(srv.server_address[1], "/one", True))
try:
    run_test(main, extra_args=["-c", CONF])
finally:
    gate.set()
    srv.shutdown()
    shutil.rmtree(TMP, ignore_errors=True)
