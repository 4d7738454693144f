#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The web console on the collector's HTTP port: /api/v1/ and /ui/.

With a quiesced topic (records produced with keys, headers, JSON, binary
and large values), a consumer group that committed part of it and a file
sink, every /api/v1 endpoint answers JSON whose numbers are the CLI's
(`topics describe`, `groups describe`, `groups list`, `cluster describe`)
and /metrics' at the same moment: offsets, sizes, leaders, replicas, ISR,
configs, lag, sink counters, producer record counts. /ui/ serves the page,
its script and stylesheet with their content types. Anything but GET or
HEAD is 405; the record browser keeps to limit and max_bytes, decodes
headers and marks a cut value; bad paths and parameters get a JSON 404 or
400, and the collector keeps serving through all of it.
"""
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

import confluent_kafka  # noqa: E402

TMP = tempfile.mkdtemp(prefix="trib-0800.")
CONF = os.path.join(TMP, "collector.yaml")
SINK_OUT = os.path.join(TMP, "sink-out")
TOPIC = "console.t"
SINK_TOPIC = "console.sink"
GROUP = "g-console"
CLIENT_ID = "console-test-producer"
BIG = b"B" * 5000


def request(c, method, path):
    host, port = c.metrics.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


def get_json(c, path, want=200):
    status, ctype, body = request(c, "GET", path)
    if status != want:
        raise TestFailure("GET %s: status %d, expected %d: %r" % (path, status, want, body[:300]))
    if ctype != "application/json":
        raise TestFailure("GET %s: Content-Type %r, expected application/json" % (path, ctype))
    try:
        return json.loads(body)
    except ValueError as e:
        raise TestFailure("GET %s: not JSON (%s): %r" % (path, e, body[:300]))


def metrics(c):
    status, _, body = request(c, "GET", "/metrics")
    if status != 200:
        raise TestFailure("/metrics: %d" % status)
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: console says %r, expected %r" % (what, got, want))


def wait_for(what, fn, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last is True:
            return
        time.sleep(0.2)
    raise TestFailure("timed out waiting for %s (last: %r)" % (what, last))


def produce(c):
    p = confluent_kafka.Producer({"bootstrap.servers": c.bootstrap, "client.id": CLIENT_ID,
                                  "linger.ms": 5})
    n = 0
    for i in range(60):
        p.produce(TOPIC, key=b"k-%d" % i, value=json.dumps({"seq": i, "msg": "hello"}).encode(),
                  partition=i % 3, headers=[("source", b"test"), ("seq", b"%d" % i)])
        n += 1
    # The newest records of partition 0: binary, null key, large.
    p.produce(TOPIC, key=None, value=b"\xff\xfe\x00bin", partition=0)
    p.produce(TOPIC, key=b"big", value=BIG, partition=0, headers=[("h", None)])
    n += 2
    for i in range(40):
        p.produce(SINK_TOPIC, key=b"s", value=b'{"i":%d}' % i)
        n += 1
    if p.flush(30) != 0:
        raise TestFailure("producer did not deliver everything")
    return n


def consume_part(c):
    """Group GROUP commits the first 10 records of each partition, then leaves."""
    cons = confluent_kafka.Consumer({"bootstrap.servers": c.bootstrap, "group.id": GROUP,
                                     "auto.offset.reset": "earliest",
                                     "enable.auto.commit": False})
    cons.assign([confluent_kafka.TopicPartition(TOPIC, p, 0) for p in range(3)])
    got = {0: 0, 1: 0, 2: 0}
    deadline = time.monotonic() + 60
    while min(got.values()) < 10 and time.monotonic() < deadline:
        m = cons.poll(1.0)
        if m is None or m.error():
            continue
        got[m.partition()] += 1
    cons.commit(offsets=[confluent_kafka.TopicPartition(TOPIC, p, 10) for p in range(3)],
                asynchronous=False)
    cons.close()


def cli_topic(c):
    """{partition: (leader, replicas, isr)} and the Configs text from `topics describe`."""
    out = c.cli("topics", "describe", "--topic", TOPIC).stdout
    parts, configs = {}, None
    for line in out.splitlines():
        f = dict(w.split(": ", 1) for w in line.strip().split("\t") if ": " in w)
        if "PartitionCount" in f:
            configs = f["Configs"]
        elif "Partition" in f:
            parts[int(f["Partition"])] = (int(f["Leader"]), f["Replicas"], f["Isr"])
    return parts, configs


def cli_group(c):
    out = c.cli("groups", "describe", "--group", GROUP).stdout
    lines = out.splitlines()
    head = [i for i, l in enumerate(lines) if l.startswith("TOPIC ")][0]
    rows = {}
    for line in lines[head + 1:]:
        if not line.strip():
            break
        w = line.split()
        rows[(w[0], int(w[1]))] = (int(w[2]), int(w[3]), int(w[4]))
    return lines[0], rows


def check_overview(c, m):
    o = get_json(c, "/api/v1/overview")
    expect("overview records_in", o["totals"]["records_in"], int(m["tributary_records_in_total"]))
    expect("overview bytes_in", o["totals"]["bytes_in"], int(m["tributary_bytes_in_total"]))
    expect("overview records_out", o["totals"]["records_out"],
           int(m["tributary_records_out_total"]))
    expect("overview topics", o["topics"], int(m["tributary_topics"]))
    expect("overview partitions", o["partitions"], int(m["tributary_partitions"]))
    out = c.cli("cluster", "describe").stdout
    controller = int([l for l in out.splitlines() if l.startswith("Controller:")][0].split()[1])
    expect("controller", o["controller"], controller)
    brokers = [l.split() for l in out.splitlines() if l.startswith("  ")]
    expect("brokers", sorted("%d %s:%d" % (b["id"], b["host"], b["port"]) for b in o["brokers"]),
           sorted("%s %s" % (b[0], b[1]) for b in brokers))
    for k in ("records_in_per_sec", "bytes_in_per_sec"):
        hist = o["history"][k]
        if hist["interval_ms"] <= 0 or not hist["values"]:
            raise TestFailure("overview history %s is empty: %r" % (k, hist))
    names = [t["name"] for t in o["topic_list"]]
    if TOPIC not in names or SINK_TOPIC not in names:
        raise TestFailure("overview topic_list lacks the topics: %s" % names)
    log("overview matches /metrics and cluster describe: %d records in, controller %d"
        % (o["totals"]["records_in"], controller))


def check_topic(c, m):
    t = get_json(c, "/api/v1/topics/" + TOPIC)
    parts, configs = cli_topic(c)
    expect("partition count", t["partition_count"], 3)
    for p in t["partitions"]:
        i = p["partition"]
        lab = 'topic="%s",partition="%d"' % (TOPIC, i)
        leader, replicas, isr = parts[i]
        expect("p%d leader" % i, p["leader"], leader)
        expect("p%d replicas" % i, ",".join(map(str, p["replicas"])), replicas)
        expect("p%d isr" % i, ",".join(map(str, p["isr"])), isr)
        for key, metric in (("log_start_offset", "log_start_offset"),
                            ("log_end_offset", "log_end_offset"),
                            ("high_watermark", "high_watermark"), ("size_bytes", "size_bytes"),
                            ("segments", "segments"), ("records_in", "records_in_total"),
                            ("bytes_in", "bytes_in_total")):
            expect("p%d %s" % (i, key), p[key],
                   int(m["tributary_partition_%s{%s}" % (metric, lab)]))
    # The CLI lists the topic's own configs: the same ones are "topic" here, same values.
    mine = sorted("%s=%s" % (x["name"], x["value"]) for x in t["configs"]
                  if x["source"] == "topic")
    expect("topic configs", ",".join(mine), ",".join(sorted(configs.split(","))))
    expect("retention_ms", t["retention_ms"], 7200000)
    log("topic view matches topics describe and /metrics: %s" % ", ".join(
        "p%d end %d" % (p["partition"], p["log_end_offset"]) for p in t["partitions"]))
    if get_json(c, "/api/v1/topics")[0]["name"] is None:
        raise TestFailure("/api/v1/topics has a nameless row")


def check_group(c, m):
    g = get_json(c, "/api/v1/groups/" + GROUP)
    state, rows = cli_group(c)
    if ("state %s," % g["state"]) not in state:
        raise TestFailure("group state: console %s, CLI %r" % (g["state"], state))
    mine = {(o["topic"], o["partition"]): (o["committed_offset"], o["end_offset"], o["lag"])
            for o in g["offsets"]}
    expect("group offsets/ends/lags", mine, rows)
    expect("total lag", g["total_lag"], sum(r[2] for r in rows.values()))
    on_metrics = {(t, p): int(m['tributary_group_lag_records{group="%s",topic="%s",partition="%d"}'
                                % (GROUP, t, p)]) for (t, p) in rows}
    expect("tributary_group_lag_records", on_metrics, {k: r[2] for k, r in rows.items()})
    if not g["total_lag"] > 0:
        raise TestFailure("the group should lag: %r" % g)
    listed = {x["group"]: x for x in get_json(c, "/api/v1/groups")}
    out = c.cli("groups", "list").stdout.split()
    for name in listed:
        if name not in out:
            raise TestFailure("console lists group %s, groups list does not: %s" % (name, out))
    expect("groups list lag", listed[GROUP]["total_lag"], g["total_lag"])
    log("group view matches groups describe and /metrics: %s" % sorted(mine.items()))


def check_sinks(c, m):
    s = get_json(c, "/api/v1/sinks")
    expect("sinks", [x["name"] for x in s], ["files"])
    f = s[0]
    expect("delivered", f["records_delivered"],
           int(m['tributary_sink_records_delivered_total{sink="files"}']))
    expect("dead-lettered", f["records_dead_lettered"],
           int(m['tributary_sink_records_dead_lettered_total{sink="files"}']))
    expect("sink up", f["up"], True)
    g = get_json(c, "/api/v1/groups/sink.files")
    expect("sink in its group's view", [x["name"] for x in g["sinks"]], ["files"])
    log("sinks view matches /metrics: %d delivered" % f["records_delivered"])


def check_producers(c, produced):
    ps = [p for p in get_json(c, "/api/v1/producers") if p["client_id"] == CLIENT_ID]
    if len(ps) != 1:
        raise TestFailure("producers view: %r" % ps)
    expect("producer records", ps[0]["records"], produced)
    expect("producer host", ps[0]["host"], "127.0.0.1")
    expect("producer principal", ps[0]["principal"], "User:ANONYMOUS")
    log("producers view: %s sent %d records in %d requests"
        % (CLIENT_ID, ps[0]["records"], ps[0]["requests"]))


def check_records(c):
    base = "/api/v1/topics/%s/partitions/0/records" % TOPIC
    t = get_json(c, "/api/v1/topics/" + TOPIC)
    hw = t["partitions"][0]["high_watermark"]
    r = get_json(c, base + "?limit=3&max_bytes=100000")
    expect("limit 3", [x["offset"] for x in r["records"]], [hw - 3, hw - 2, hw - 1])
    first, binary, big = r["records"]
    expect("json value", json.loads(first["value"]), {"seq": 57, "msg": "hello"})
    expect("headers", [(h["key"], h["value"]) for h in first["headers"]],
           [("source", "test"), ("seq", "57")])
    expect("binary value", (binary["value_encoding"], binary["value"], binary["key"]),
           ("base64", "//4AYmlu", None))
    expect("big value", (big["value"], big["truncated"], big["headers"][0]["value"]),
           (BIG.decode(), False, None))
    # max_bytes keeps the newest records that fit and says how many it left out.
    r = get_json(c, base + "?limit=3&max_bytes=5030")
    expect("max_bytes 5030", ([x["offset"] for x in r["records"]], r["omitted"]),
           ([hw - 2, hw - 1], 1))
    # The newest record always shows, cut to max_bytes and marked.
    r = get_json(c, base + "?limit=3&max_bytes=100")
    expect("max_bytes 100", len(r["records"]), 1)
    x = r["records"][0]
    expect("cut value", (x["offset"], len(x["value"]) + len(x["key"]), x["truncated"],
                         x["value_size"]), (hw - 1, 100, True, 5000))
    total = sum(len(x["key"] or "") + len(x["value"] or "") for x in
                get_json(c, base + "?limit=20&max_bytes=300")["records"])
    if total > 300:
        raise TestFailure("records past max_bytes: %d bytes" % total)
    expect("limit 0", get_json(c, base + "?limit=0")["records"], [])
    r = get_json(c, base + "?limit=3&max_bytes=0")
    expect("max_bytes 0", (r["records"], r["omitted"]), ([], 3))
    for q in ("?limit=abc", "?limit=-1", "?max_bytes=99999999999", "?limit=1001", "?limit="):
        e = get_json(c, base + q, 400)
        if "error" not in e:
            raise TestFailure("bad query %s: no error field" % q)
    log("record browser: limit, max_bytes, headers, binary and cut values hold")


def check_ui_and_methods(c):
    for path, ctype, needle in (("/ui/", "text/html; charset=utf-8", b'src="/ui/app.js"'),
                                ("/ui", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
                                ("/ui/index.html", "text/html; charset=utf-8", b"style.css"),
                                ("/ui/app.js", "text/javascript; charset=utf-8", b"/api/v1/"),
                                ("/ui/style.css", "text/css; charset=utf-8", b"body")):
        status, got, body = request(c, "GET", path)
        if status != 200 or got != ctype or needle not in body:
            raise TestFailure("GET %s: %d %r (%d bytes)" % (path, status, got, len(body)))
    status, got, body = request(c, "HEAD", "/ui/app.js")
    expect("HEAD /ui/app.js", (status, got, body), (200, "text/javascript; charset=utf-8", b""))
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/api/v1/overview", "/api/v1/topics/" + TOPIC, "/ui/", "/api/v1/nope"):
            status, got, body = request(c, method, path)
            if status != 405 or got != "application/json" or "error" not in json.loads(body):
                raise TestFailure("%s %s: %d %r %r" % (method, path, status, got, body[:200]))
    log("/ui/ assets served with their types; non-GET refused with 405")


def check_bad_paths(c):
    for path in ("/api/v1/nope", "/api/v1/", "/api", "/api/v2/overview", "/api/v1/topics/nope",
                 "/api/v1/groups/nope", "/api/v1/topics/%s/partitions/9/records" % TOPIC,
                 "/api/v1/topics/%s/partitions/x/records" % TOPIC,
                 "/api/v1/topics/%s/partitions/-1/records" % TOPIC,
                 "/api/v1/topics/%s/partitions/0" % TOPIC,
                 "/api/v1/topics/%s/partitions/0/records/x" % TOPIC,
                 "/api/v1//topics", "/api/v1/topics//", "/api/v1/overview/x", "/ui/nope.js",
                 "/ui/../metrics", "/api/v1/topics/" + "x" * 900, "/api/v1/groups/%ff%fe"):
        e = get_json(c, path, 404)
        if "error" not in e:
            raise TestFailure("%s: 404 without an error field: %r" % (path, e))
    for path in ("/api/v1/topics/%zz", "/api/v1/topics/%00"):
        get_json(c, path, 400)
    if not c.alive():
        raise TestFailure("the collector died on a bad path")
    status, _, _ = request(c, "GET", "/health")
    expect("/health after bad paths", status, 200)
    log("bad paths: JSON 404/400, the collector still serves")


def main(c):
    c.cli("topics", "create", "--topic", TOPIC, "--partitions", "3", "--config",
          "retention.ms=7200000")
    c.cli("topics", "create", "--topic", SINK_TOPIC, "--partitions", "1")
    produced = produce(c)
    consume_part(c)

    def sink_done():
        s = get_json(c, "/api/v1/sinks")
        return (len(s) == 1 and s[0]["records_delivered"] == 40) or s
    wait_for("the sink to deliver 40 records", sink_done)

    def quiet():
        # Quiesced: the group has no member and the sink's lag on /metrics is 0.
        m = metrics(c)
        lag = m.get('tributary_sink_lag_records{sink="files",topic="%s",partition="0"}'
                    % SINK_TOPIC)
        g = get_json(c, "/api/v1/groups/" + GROUP)
        return (lag == 0 and g["members"] == 0) or (lag, g["members"])
    wait_for("a quiesced collector", quiet)
    # The same moment for the console and /metrics: nothing moves from here on.
    m = metrics(c)
    check_overview(c, m)
    check_topic(c, m)
    check_group(c, m)
    check_sinks(c, m)
    check_producers(c, produced)
    m2 = metrics(c)
    expect("records_in unchanged", m2["tributary_records_in_total"],
           m["tributary_records_in_total"])
    check_records(c)
    check_ui_and_methods(c)
    check_bad_paths(c)


with open(CONF, "w") as f:
    f.write("""
sinks:
  - name: files
    type: file
    topics: ["%s"]
    batch: {max_records: 100, linger: 50ms}
    options: {path: "%s"}
""" % (SINK_TOPIC, SINK_OUT))
try:
    run_test(main, extra_args=["-c", CONF])
finally:
    shutil.rmtree(TMP, ignore_errors=True)
