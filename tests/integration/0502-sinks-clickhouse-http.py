# SPDX-License-Identifier: Apache-2.0
"""Sinks 0502: the `clickhouse` sink against Debian's clickhouse-server
(18.16, started here in a temp dir on 127.0.0.1) and the `http` sink in
both formats against a receiver in this script (json_lines; an
Elasticsearch-like _bulk that answers 409 for an _id it has and 400 for a
document it refuses, and 503 now and then).

100,000 agent-shaped events into 4 partitions, the collector SIGKILLed and
restarted in the middle, then ClickHouse stopped for 10 s while the second
half arrives. Then:
- ClickHouse: SELECT ... FINAL has every (topic, partition, offset) exactly
  once (the ReplacingMergeTree keyed on it collapses replays);
- _bulk: every _id exactly once but the one refused, which is in the
  dead-letter topic with its error; json_lines: every record at least once;
- the three groups have lag 0.
"""
import http.server
import importlib.util
import json
import os
import shutil
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

N = 100000
BAD = 54321
TOPIC = "web.access"
TMP = tempfile.mkdtemp(prefix="trib-0502.")
CONF = os.path.join(TMP, "collector.yaml")
ch = sinklib.ClickHouse(TMP)

lock = threading.Lock()
docs = {}          # _bulk: _id -> doc
lines_seen = {}    # json_lines: (partition, offset) -> count
requests = {"bulk": 0, "lines": 0, "503": 0}


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with lock:
            kind = "bulk" if self.path.endswith("/_bulk") else "lines"
            requests[kind] += 1
            if requests[kind] % 7 == 3:  # now and then, a transient failure
                requests["503"] += 1
                return self.reply(503, {"error": "try later"})
            if kind == "lines":
                for line in data.splitlines():
                    r = json.loads(line)
                    k = (r["partition"], r["offset"])
                    lines_seen[k] = lines_seen.get(k, 0) + 1
                return self.reply(200, {})
            ls = data.splitlines()
            items = []
            errors = False
            for i in range(0, len(ls), 2):
                meta = json.loads(ls[i])["create"]
                doc = json.loads(ls[i + 1])
                _id = meta["_id"]
                if _id in docs:
                    st = 409
                elif "reject-me" in json.dumps(doc["value"]):
                    st = 400
                else:
                    docs[_id] = doc
                    st = 201
                errors = errors or st >= 300
                item = {"_index": meta["_index"], "_id": _id, "status": st}
                if st == 400:
                    item["error"] = {"type": "mapper_parsing_exception",
                                     "reason": "failed to parse field [value]"}
                items.append({"create": item})
            return self.reply(200, {"took": 1, "errors": errors, "items": items})


def produce(bootstrap, start, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(start, start + n):
        k, v = sinklib.event(i)
        if i == BAD:
            v = v.replace(b'"message":"', b'"message":"reject-me ')
        while True:
            try:
                p.produce(TOPIC, key=k, value=v, partition=i % 4)
                break
            except BufferError:
                p.poll(0.1)
    if p.flush(60) != 0:
        raise TestFailure("produce did not finish")


def ch_final():
    try:
        return ch.sql("SELECT count(), uniqExact(topic, partition, offset) FROM ev FINAL")
    except OSError:
        return "0\t0"


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 4)
    produce(c.bootstrap, 0, N // 2)
    sinklib.wait_for("some rows in ClickHouse", lambda: int(ch_final().split()[0]) > 0
                     or ch_final(), 60, 0.05)
    log("SIGKILL with ClickHouse at %s" % ch_final())
    c.restart("KILL")
    sinklib.wait_for("the first half in ClickHouse", lambda: ch_final() == "%d\t%d" % (
        N // 2, N // 2) or ch_final(), 60)
    log("stopping ClickHouse for 10 s")
    ch.stop()
    t0 = time.monotonic()
    produce(c.bootstrap, N // 2, N - N // 2)
    time.sleep(max(0, 10 - (time.monotonic() - t0)))
    ch.start()

    def done():
        lags = [sinklib.group_lag(c, g) for g in ("sink.ch", "sink.jl", "sink.es")]
        ok = all(len(l) == 4 and all(v[2] == 0 for v in l.values()) for l in lags)
        return (ok and ch_final() == "%d\t%d" % (N, N)) or (ch_final(), lags)
    sinklib.wait_for("every record in every sink, lag 0", done, 180)

    raw = ch.sql("SELECT count() FROM ev")
    log("ClickHouse: FINAL %s; %s rows before merges (replays collapse)" % (ch_final(), raw))
    seqs = ch.sql("SELECT count(DISTINCT visitParamExtractUInt(value, 'seq')), "
                  "min(visitParamExtractUInt(value, 'seq')), "
                  "max(visitParamExtractUInt(value, 'seq')) FROM ev FINAL")
    if seqs != "%d\t0\t%d" % (N, N - 1):
        raise TestFailure("ClickHouse values: %s" % seqs)

    with lock:
        nd, nl = len(docs), len(lines_seen)
        dup_lines = sum(1 for v in lines_seen.values() if v > 1)
        retried = requests["503"]
    log("_bulk: %d documents; json_lines: %d records (%d seen twice); %d answers were 503"
        % (nd, nl, dup_lines, retried))
    if nd != N - 1:
        raise TestFailure("_bulk has %d documents, want %d" % (nd, N - 1))
    if nl != N:
        raise TestFailure("json_lines has %d records, want %d" % (nl, N))

    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "dlq-reader"})
    cons.assign([TopicPartition("dlq.es", 0, 0)])
    m = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and m is None:
        m = cons.poll(0.5)
        if m is not None and m.error():
            m = None
    cons.close()
    if m is None:
        raise TestFailure("nothing in dlq.es")
    h = {k: v.decode() for k, v in (m.headers() or [])}
    log("dead letter: %s" % h)
    err = h.get("tributary.error", "")
    if not (err.startswith("http: _bulk item ") and
            err.endswith(" refused (400): failed to parse field [value]")) or \
            h.get("tributary.sink") != "es":
        raise TestFailure("dead letter headers: %s" % h)
    if b"reject-me" not in m.value():
        raise TestFailure("dead letter value: %r" % m.value())


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a SIGKILLed collector drops its connections mid-request


srv = Server(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
try:
    ch.start()
    sinklib.write_config(CONF, """
sinks:
  - name: ch
    type: clickhouse
    topics: ["web.access"]
    batch: {max_records: 5000, linger: 200ms}
    retry: {initial: 100ms, max: 2s}
    options: {url: "%s", table: ev, connect_timeout: 1s}
  - name: jl
    type: http
    topics: ["web.access"]
    batch: {max_records: 2000, linger: 200ms}
    retry: {initial: 50ms, max: 500ms}
    options: {url: "http://127.0.0.1:%d/ingest"}
  - name: es
    type: http
    topics: ["web.access"]
    batch: {max_records: 2000, linger: 200ms}
    retry: {initial: 50ms, max: 500ms}
    dead_letter_topic: dlq.es
    options: {url: "http://127.0.0.1:%d", format: es_bulk, index: logs}
""" % (ch.url(), port, port))
    run_test(main, extra_args=["-c", CONF])
finally:
    srv.shutdown()
    ch.stop()
    shutil.rmtree(TMP, ignore_errors=True)
