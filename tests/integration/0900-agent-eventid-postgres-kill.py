# SPDX-License-Identifier: Apache-2.0
"""Event ids end to end: the agent tails a file (renamed halfway, a new one
written at its path) into a single-node collector whose `postgres` sink
(or, with --sink clickhouse, tests 0902/0903, its `clickhouse` sink, read
with FINAL as its documentation says; with --sink es_bulk, 0904/0905, its
`http` sink in es_bulk format, to a _bulk endpoint here that keeps one
document per _id) writes the events, and is SIGKILLed 3 times while the 40,000 lines are
written, restarted each time. Each restart re-sends what was not
acknowledged before the kill: new records, at new offsets (and maybe in the
other partition), carrying the same event.id header.

Default: the table holds exactly 40,000 rows, each line once, although the
topic holds more records than lines (so something was sent again; a run in
which no line was re-sent proves nothing and fails).

With --event-id off (output.event_id: false, tests 0901, 0903, 0905): the
re-sent lines land twice (rows > lines, every line still there), which shows the first
mode's check can fail.
"""
import argparse
import http.server
import importlib
import json
import importlib.util
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

ap = argparse.ArgumentParser()
ap.add_argument("--event-id", choices=["on", "off"], default="on")
ap.add_argument("--sink", choices=["postgres", "clickhouse", "es_bulk"], default="postgres")
ARGS = ap.parse_args()
EVENT_ID = ARGS.event_id == "on"
PG = ARGS.sink == "postgres"
BULK = ARGS.sink == "es_bulk"
N = 40000
KILLS = 3
TOPIC = "agent.eid"
TMP = tempfile.mkdtemp(prefix="trib-0900.")
CONF = os.path.join(TMP, "collector.yaml")
GROUP = {"postgres": "sink.pg", "clickhouse": "sink.ch", "es_bulk": "sink.es"}[ARGS.sink]
pg = sinklib.Postgres(TMP) if PG else None
ch = sinklib.ClickHouse(TMP) if ARGS.sink == "clickhouse" else None
docs = {}  # es_bulk: _id -> the message, as an Elasticsearch index keeps one per _id
docs_lock = threading.Lock()


class Bulk(http.server.BaseHTTPRequestHandler):
    """_bulk as Elasticsearch answers it: create is 201, or 409 for an _id it has."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        ls = self.rfile.read(int(self.headers["Content-Length"])).decode().splitlines()
        items = []
        with docs_lock:
            for i in range(0, len(ls), 2):
                meta = json.loads(ls[i])["create"]
                msg = json.loads(ls[i + 1])["value"]["message"]
                st = 409 if meta["_id"] in docs else 201
                docs.setdefault(meta["_id"], msg)
                items.append({"create": {"_index": meta["_index"], "_id": meta["_id"],
                                         "status": st}})
        b = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


def counts():
    """(rows, distinct lines, min seq, max seq) in the table."""
    if BULK:
        with docs_lock:
            s = [int(agentlib.SEQ.search(m).group(1)) for m in docs.values()]
        return (len(s), len(set(s)), min(s), max(s)) if s else (0, 0, -1, -1)
    if ch is not None:
        try:
            out = ch.sql("SELECT count(), uniqExact(s), min(s), max(s) FROM (SELECT "
                         "toInt64(extract(visitParamExtractString(value, 'message'), "
                         "'seq=([0-9]+)')) AS s FROM default.eid_rows FINAL)")
        except OSError:  # not created yet
            return (0, 0, -1, -1)
        r = tuple(int(x) for x in out.split("\t"))
        return r if r[0] else (0, 0, -1, -1)
    try:
        out = pg.sql("select count(*), count(distinct s), coalesce(min(s), -1), "
                     "coalesce(max(s), -1) from (select ((regexp_match(value->>'message', "
                     "'seq=([0-9]+)'))[1])::int as s from eid_rows) t")
    except TestFailure:  # not created yet
        return (0, 0, -1, -1)
    return tuple(int(x) for x in out.split("|"))


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 2)
    logs = os.path.join(c.tmp, "logs")
    os.makedirs(logs)
    path = os.path.join(logs, "app.log")
    lines = [agentlib.access_line(i) for i in range(N)]
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: app
    inputs:
      - type: tail
        paths: ["%s"]
        rotate_wait: 1s
    topic: %s
""" % (path, TOPIC), agent_extra="  memory_limit: 16MiB\n",
        output_extra="" if EVENT_ID else "  event_id: false\n")
    done = threading.Event()

    def writer():
        f = open(path, "w")
        for base in range(0, N, 1000):
            if base == N // 2:
                f.close()
                os.rename(path, path + ".1")
                f = open(path, "w")
            f.write("".join(lines[base:base + 1000]))
            f.flush()
            time.sleep(0.04)  # ~25,000 lines/s: the kills land mid-file
        f.close()
        done.set()

    rng = random.Random(900)
    try:
        open(path, "w").close()
        a.start()
        w = threading.Thread(target=writer)
        w.start()
        for k in range(KILLS):
            time.sleep(rng.uniform(0.3, 0.5))
            a.stop("KILL")
            log("kill %d: checkpoints %s" % (k + 1, [(r.get("path"), r.get("offset"))
                                                    for r in a.checkpoints()]))
            a.start()
        w.join()
        sinklib.wait_for("every line in the table", lambda: counts()[1] == N or counts(), 120)
        a.stop("TERM")

        def drained():
            lag = sinklib.group_lag(c, GROUP)
            return (len(lag) == 2 and all(v[2] == 0 for v in lag.values())) or lag
        sinklib.wait_for("the sink's lag 0", drained, 60)
        if ch is not None:
            # the duplicates wait for a merge; FINAL collapses them when read, which is
            # what is checked; OPTIMIZE only makes the parts merge now
            ch.sql("OPTIMIZE TABLE default.eid_rows FINAL")
        lag = sinklib.group_lag(c, GROUP)
        records = sum(v[1] for v in lag.values())
        rows, distinct, lo, hi = counts()
        log("event ids %s: %d records in the topic for %d lines; table: %d rows, %d distinct "
            "lines, seq %d..%d" % ("on" if EVENT_ID else "off", records, N, rows, distinct, lo, hi))
        if distinct != N or lo != 0 or hi != N - 1:
            raise TestFailure("lines missing from the table: %d distinct of %d" % (distinct, N))
        if records <= N:
            raise TestFailure("no line was sent twice (%d records): the kills proved nothing"
                              % records)
        if EVENT_ID and BULK:
            if rows != N:
                raise TestFailure("%d documents for %d lines: duplicates despite event ids"
                                  % (rows, N))
            log("exactly %d documents, each line once, %d re-sent records answered 409"
                % (rows, records - N))
        elif EVENT_ID and not PG:
            if rows != N:
                raise TestFailure("%d rows (FINAL) for %d lines: duplicates despite event ids"
                                  % (rows, N))
            log("exactly %d rows (FINAL), each line once, %d re-sent records collapsed by "
                "event id" % (rows, records - N))
        elif EVENT_ID:
            if rows != N:
                raise TestFailure("%d rows for %d lines: duplicates despite event ids"
                                  % (rows, N))
            ids = pg.sql("select count(*), count(distinct event_id), "
                         "count(distinct headers->>'event.id') from eid_rows")
            if ids != "%d|%d|%d" % (N, N, N):
                raise TestFailure("event ids: rows, distinct event_id, distinct header = %s"
                                  % ids)
            log("exactly %d rows, each line once, %d re-sent records dropped by event id"
                % (rows, records - N))
        else:
            if rows <= N:
                raise TestFailure("without event ids the re-sent lines should land twice, "
                                  "but the table has %d rows for %d lines" % (rows, N))
            log("without event ids: %d duplicate rows" % (rows - N))
        a.check_logs()
    except BaseException:
        a.dump()
        raise
    finally:
        a.kill_if_running()


try:
    if BULK:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bulk)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        sink = ("type: http", 'options: {url: "http://127.0.0.1:%d", format: es_bulk, '
                'index: logs}' % srv.server_address[1])
    elif PG:
        pg.start()
        sink = ("type: postgres",
                'options: {conninfo: "%s", table: eid_rows, connect_timeout: 2s}' % pg.conninfo())
    else:
        ch.start()
        sink = ("type: clickhouse", 'options: {url: "%s", table: eid_rows}' % ch.url())
    sinklib.write_config(CONF, """
sinks:
  - name: %s
    %s
    topics: ["%s"]
    batch: {max_records: 2000, max_bytes: 4MiB, linger: 100ms}
    retry: {initial: 100ms, max: 2s}
    %s
""" % (GROUP[5:], sink[0], TOPIC, sink[1]))
    run_test(main, extra_args=["-c", CONF])
finally:
    if pg is not None:
        pg.kill()
    if ch is not None:
        ch.stop()
    shutil.rmtree(TMP, ignore_errors=True)
