#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The web console in a real browser: Debian's headless chromium driven by selenium.

A collector with an HTTP sink (its receiver, here, refuses any batch that
holds a "poison" record, so the sink dead-letters exactly that record), a
3-partition topic produced to and partly consumed by a kafka-python
consumer group that then stops. Each view is opened in chromium and what
the page shows (its tables and cards, read from the DOM) must be what
kafka-python and /metrics report at the same moment:

- the overview: brokers (kafka-python's cluster metadata), topics and
  partitions (/metrics), each topic's records in (/metrics);
- a topic: each partition's leader (kafka-python's metadata), log start and
  end offsets (kafka-python's beginning_offsets/end_offsets), size and
  segments (/metrics);
- the stopped group: each partition's committed offset (kafka-python's
  committed()), end offset and lag (tributary_group_lag_records); then
  records are produced twice more and the same page, without a reload,
  shows the lag grow by exactly those records each time;
- the sinks: the HTTP sink's delivered and dead-lettered counts (/metrics),
  and kafka-python reads that one record from the dead-letter topic;
- the record browser: the last records of a partition with the offsets,
  keys, headers and JSON values kafka-python reads there.
"""
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TMP = tempfile.mkdtemp(prefix="trib-0803.")
CONF = os.path.join(TMP, "collector.yaml")
TOPIC = "shop.orders"
SINK_TOPIC = "shop.events"
DLQ = "shop.events.dlq"
GROUP = "billing"
N_FIRST = 45  # records per partition: 15 (the group commits 10 of each)


# ---- the sink's receiver ------------------------------------------------------------------------

class Receiver(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if b"poison" in body:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"refused: a poison record")
            return
        Receiver.received.extend(body.splitlines())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


# ---- reading /metrics and the page --------------------------------------------------------------

def metrics(c):
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def mval(m, name, **labels):
    key = name + ("{%s}" % ",".join('%s="%s"' % kv for kv in labels.items()) if labels else "")
    if key not in m:
        raise TestFailure("/metrics has no %s" % key)
    return int(m[key])


def fmt_bytes(v):
    """The page's fmtBytes."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    v = float(v)
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    return ("%.1f" % v if i else "%d" % v) + " " + units[i]


# The page's tables (each with the heading before it) and cards, as text.
READ_PAGE = """
const main = document.getElementById('main');
const out = {status: document.getElementById('status').textContent, h1: '', tables: {},
             cards: {}, error: null, sparks: []};
const h1 = main.querySelector('h1');
if (h1) out.h1 = h1.textContent;
const bad = main.querySelector('p.bad');
if (bad) out.error = bad.textContent;
let heading = out.h1;
for (const e of main.children) {
  if (e.tagName === 'H1' || e.tagName === 'H2') heading = e.textContent;
  if (e.tagName === 'TABLE') {
    const rows = [...e.querySelectorAll('tr')].map(
        (tr) => [...tr.children].map((td) => td.innerText.trim()));
    const head = rows.shift() || [];
    out.tables[heading] = rows.map((r) => Object.fromEntries(head.map((k, i) => [k, r[i]])));
  }
}
for (const c of main.querySelectorAll('.card')) {
  out.cards[c.querySelector('.muted').textContent] = c.querySelector('.v').textContent;
}
for (const p of main.querySelectorAll('svg.spark polyline')) {
  const pts = p.getAttribute('points');
  out.sparks.push(pts ? pts.split(' ').length : 0);
}
return out;
"""


class Page:
    def __init__(self, c):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1400,2000", "--user-data-dir=" + os.path.join(TMP, "chromium")):
            opts.add_argument(a)
        self.base = "http://%s/ui/" % c.metrics
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(30)

    def open(self, frag, want=None, timeout=30):
        """Loads /ui/#frag and waits until its view rendered (and want(page) holds)."""
        self.driver.get(self.base + "#" + frag)
        return self.wait(frag, want, timeout)

    def wait(self, frag, want=None, timeout=30):
        deadline = time.monotonic() + timeout
        page = None
        while time.monotonic() < deadline:
            page = self.driver.execute_script(READ_PAGE)
            if page["error"]:
                raise TestFailure("#%s shows an error: %s" % (frag, page["error"]))
            if page["status"].startswith("updated") and (want is None or want(page)):
                return page
            time.sleep(0.2)
        self.shot(frag)
        raise TestFailure("#%s did not render as expected within %ds: %r" % (frag, timeout, page))

    def shot(self, name):
        path = os.path.join(TMP, "shot-%s.png" % re.sub(r"[^a-z0-9]+", "-", name.lower()))
        try:
            self.driver.save_screenshot(path)
            log("screenshot: %s" % path)
        except Exception:  # noqa: BLE001 - a screenshot is only a help
            pass

    def close(self):
        self.driver.quit()


def expect(what, got, want):
    if got != want:
        raise TestFailure("%s: the page shows %r, expected %r" % (what, got, want))


def row(table, key, value):
    rows = [r for r in table if r.get(key) == value]
    if len(rows) != 1:
        raise TestFailure("no single row %s=%s in %r" % (key, value, table))
    return rows[0]


# ---- kafka-python's view ------------------------------------------------------------------------

class Client:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP,
                                      enable_auto_commit=False)

    def offsets(self, topic, n):
        tps = [TopicPartition(topic, p) for p in range(n)]
        begin = self.consumer.beginning_offsets(tps)
        end = self.consumer.end_offsets(tps)
        return ({tp.partition: begin[tp] for tp in tps}, {tp.partition: end[tp] for tp in tps})

    def committed(self, topic, n):
        return {p: self.consumer.committed(TopicPartition(topic, p)) for p in range(n)}

    def leaders(self, topic, n):
        self.consumer.topics()  # refreshes metadata
        cl = self.consumer._client.cluster
        return {p: cl.leader_for_partition(TopicPartition(topic, p)) for p in range(n)}

    def brokers(self):
        self.consumer.topics()  # refreshes metadata
        cl = self.consumer._client.cluster
        return sorted("%s %s:%s" % (b.nodeId, b.host, b.port) for b in cl.brokers())

    def read(self, topic, partition, start, stop):
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                          consumer_timeout_ms=10000)
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, start)
        out = []
        for m in c:
            out.append(m)
            if m.offset >= stop - 1:
                break
        c.close()
        return out

    def close(self):
        self.consumer.close()


def produce(bootstrap, n_per_partition, start):
    p = KafkaProducer(bootstrap_servers=bootstrap, client_id="shop-frontend", linger_ms=5)
    for i in range(start, start + n_per_partition):
        for part in range(3):
            p.send(TOPIC, partition=part, key=b"order-%d-%d" % (part, i),
                   value=json.dumps({"order": i, "partition": part, "total": i * 1.5}).encode(),
                   headers=[("source", b"web"), ("seq", b"%d" % i)])
    p.flush(30)
    p.close()


def consume_and_stop(bootstrap):
    """The group reads 10 records of each partition, commits them and stops."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False,
                      auto_offset_reset="earliest", max_poll_records=10)
    c.subscribe([TOPIC])
    got = {0: 0, 1: 0, 2: 0}
    deadline = time.monotonic() + 60
    from kafka.structs import OffsetAndMetadata
    while min(got.values()) < 10 and time.monotonic() < deadline:
        for tp, msgs in c.poll(timeout_ms=500).items():
            got[tp.partition] += len(msgs)
    if min(got.values()) < 10:
        raise TestFailure("the group read only %r" % got)
    c.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(10, None) for p in range(3)})
    c.close()


# ---- the views ----------------------------------------------------------------------------------

def check_overview(page, c, kc):
    m = metrics(c)
    p = page.open("/", lambda p: "Topics" in p["tables"])
    expect("Topics / partitions", p["cards"]["Topics / partitions"],
           "%d / %d" % (mval(m, "tributary_topics"), mval(m, "tributary_partitions")))
    expect("brokers", sorted("%s %s:%s" % (r["ID"], r["Host"], r["Port"])
                             for r in p["tables"]["Brokers"]), kc.brokers())
    for t in (TOPIC, SINK_TOPIC):
        r = row(p["tables"]["Topics"], "Topic", t)
        n = 3 if t == TOPIC else 1
        expect("%s partitions" % t, r["Partitions"], str(n))
        expect("%s records in" % t, r["Records in"],
               str(sum(mval(m, "tributary_partition_records_in_total", topic=t, partition=str(i))
                       for i in range(n))))
        _, end = kc.offsets(t, n)
        expect("%s records in vs kafka-python's end offsets" % t, r["Records in"],
               str(sum(end.values())))
    if not p["sparks"] or max(p["sparks"]) < 1:
        raise TestFailure("overview sparklines have no points: %r" % p["sparks"])
    page.shot("overview")
    log("overview: %s topics/partitions, brokers %s, %s records in %s"
        % (p["cards"]["Topics / partitions"], kc.brokers(),
           row(p["tables"]["Topics"], "Topic", TOPIC)["Records in"], TOPIC))


def check_topic(page, c, kc):
    m = metrics(c)
    p = page.open("/topic/" + TOPIC, lambda p: "Partitions" in p["tables"])
    begin, end = kc.offsets(TOPIC, 3)
    leaders = kc.leaders(TOPIC, 3)
    for i in range(3):
        r = row(p["tables"]["Partitions"], "Partition", str(i))
        lab = {"topic": TOPIC, "partition": str(i)}
        expect("p%d leader" % i, r["Leader"], str(leaders[i]))
        expect("p%d log start" % i, r["Log start"], str(begin[i]))
        expect("p%d log end" % i, r["Log end"], str(end[i]))
        expect("p%d high watermark" % i, r["High watermark"], str(end[i]))
        expect("p%d size" % i, r["Size"],
               fmt_bytes(mval(m, "tributary_partition_size_bytes", **lab)))
        expect("p%d segments" % i, r["Segments"],
               str(mval(m, "tributary_partition_segments", **lab)))
    expect("retention", p["cards"]["Retention"], "2.0 h")
    cfg = row(p["tables"]["Configs"], "Name", "retention.ms")
    expect("retention.ms config", (cfg["Value"], cfg["Source"]), ("7200000", "topic"))
    page.shot("topic")
    log("topic %s: ends %s as kafka-python's end_offsets, leaders %s" % (TOPIC, end, leaders))


def group_lags(c, kc):
    """{partition: (committed, end, lag)} from kafka-python, and the lags on /metrics."""
    _, end = kc.offsets(TOPIC, 3)
    com = kc.committed(TOPIC, 3)
    m = metrics(c)
    on_metrics = {i: mval(m, "tributary_group_lag_records", group=GROUP, topic=TOPIC,
                          partition=str(i)) for i in range(3)}
    return {i: (com[i], end[i], end[i] - com[i]) for i in range(3)}, on_metrics


def page_lags(p):
    return {int(r["Partition"]): (int(r["Committed"]), int(r["End"]), int(r["Lag"]))
            for r in p["tables"]["Lag"] if r["Topic"] == TOPIC}


def check_group(page, c, kc):
    want, on_metrics = group_lags(c, kc)
    p = page.open("/group/" + GROUP, lambda p: "Lag" in p["tables"])
    expect("group lag rows", page_lags(p), want)
    expect("lag on /metrics", on_metrics, {i: w[2] for i, w in want.items()})
    expect("state", p["cards"]["State"], "Empty")
    expect("members", p["cards"]["Members"], "0")
    total = sum(w[2] for w in want.values())
    expect("total lag", p["cards"]["Total lag"], str(total))
    log("group %s (stopped): lag %s, total %d, as kafka-python and /metrics"
        % (GROUP, {i: w[2] for i, w in want.items()}, total))
    # The consumer stays stopped; records keep coming: the open page shows the lag grow.
    seen = [total]
    start = N_FIRST // 3
    for more in (7, 11):
        produce(c.bootstrap, more, start)
        start += more
        target = seen[-1] + 3 * more
        p = page.wait("/group/" + GROUP, lambda p: p["cards"].get("Total lag") == str(target),
                      timeout=30)
        want, on_metrics = group_lags(c, kc)
        expect("group lag rows after %d more" % (3 * more), page_lags(p), want)
        expect("lag on /metrics after %d more" % (3 * more), on_metrics,
               {i: w[2] for i, w in want.items()})
        seen.append(target)
    page.shot("group")
    # The lag history (sampled every 2 s) has points for the sparkline.
    if not p["sparks"] or max(p["sparks"]) < 2:
        raise TestFailure("group lag sparklines have too few points: %r" % p["sparks"])
    log("the stopped group's lag grew on the page without a reload: %s" % seen)
    return start


def check_sinks(page, c):
    m = metrics(c)
    p = page.open("/sinks", lambda p: "Sinks" in p["tables"])
    r = row(p["tables"]["Sinks"], "Sink", "web")
    delivered = mval(m, "tributary_sink_records_delivered_total", sink="web")
    dead = mval(m, "tributary_sink_records_dead_lettered_total", sink="web")
    expect("dead-lettered on /metrics", dead, 1)
    expect("delivered", r["Delivered"], str(delivered))
    expect("dead-lettered", r["Dead-lettered"], str(dead))
    expect("type", r["Type"], "http")
    # The dead-letter topic holds that one record (kafka-python reads it).
    dl = KafkaConsumer(DLQ, bootstrap_servers=c.bootstrap, auto_offset_reset="earliest",
                       consumer_timeout_ms=10000)
    msgs = list(dl)
    dl.close()
    if len(msgs) != 1 or b"poison" not in msgs[0].value:
        raise TestFailure("dead-letter topic: %r" % [(x.offset, x.value) for x in msgs])
    page.shot("sinks")
    log("sink web: %s delivered, %s dead-lettered (the poison record, on %s), up: %s"
        % (r["Delivered"], r["Dead-lettered"], DLQ, r["Up"]))


def check_records(page, c, kc):
    _, end = kc.offsets(TOPIC, 3)
    hw = end[0]
    msgs = kc.read(TOPIC, 0, hw - 5, hw)
    p = page.open("/records/%s/0?limit=5&max_bytes=65536" % TOPIC,
                  lambda p: "Records of %s partition 0" % TOPIC in p["h1"]
                  and p["tables"].get(p["h1"]) is not None)
    rows = p["tables"][p["h1"]]
    expect("record offsets", [r["Offset"] for r in rows], [str(x.offset) for x in msgs])
    for r, x in zip(rows, msgs):
        expect("offset %d key" % x.offset, r["Key"], x.key.decode())
        expect("offset %d headers" % x.offset, r["Headers"],
               "\n".join("%s: %s" % (k, v.decode()) for k, v in x.headers))
        expect("offset %d value" % x.offset, json.loads(r["Value"]), json.loads(x.value))
        expect("offset %d timestamp" % x.offset, r["Timestamp"],
               time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(x.timestamp / 1000))
               + ".%03dZ" % (x.timestamp % 1000))
    page.shot("records")
    log("record browser: offsets %s..%s of %s-0 with the keys, headers, values and timestamps "
        "kafka-python reads" % (msgs[0].offset, msgs[-1].offset, TOPIC))


def main(c):
    adm = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    adm.create_topics([NewTopic(TOPIC, 3, 1, topic_configs={"retention.ms": "7200000"}),
                       NewTopic(SINK_TOPIC, 1, 1), NewTopic(DLQ, 1, 1)])
    adm.close()
    produce(c.bootstrap, N_FIRST // 3, 0)
    consume_and_stop(c.bootstrap)
    p = KafkaProducer(bootstrap_servers=c.bootstrap)
    for i in range(20):
        p.send(SINK_TOPIC, value=b'{"event":%d%s}' % (i, b',"poison":true' if i == 13 else b""))
    p.flush(30)
    p.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = metrics(c)
        # The host counts a dead-lettered record as delivered too (its offset is committed).
        if m.get('tributary_sink_records_dead_lettered_total{sink="web"}') == 1 and \
                m.get('tributary_sink_records_delivered_total{sink="web"}') == 20 and \
                len(Receiver.received) == 19:
            break
        time.sleep(0.2)
    else:
        raise TestFailure("the sink did not pass on 19 and dead-letter 1: %r, %d received"
                          % ({k: v for k, v in m.items() if 'sink="web"' in k},
                             len(Receiver.received)))
    kc = Client(c.bootstrap)
    try:
        page = Page(c)
    except Exception as e:  # noqa: BLE001
        raise TestFailure("chromium via selenium did not start: %s" % e)
    try:
        check_overview(page, c, kc)
        check_topic(page, c, kc)
        check_group(page, c, kc)
        check_sinks(page, c)
        check_records(page, c, kc)
    finally:
        page.close()
        kc.close()


for path in (CHROMIUM, CHROMEDRIVER):
    if not os.access(path, os.X_OK):
        raise SystemExit(log("SKIP: %s is missing (Debian's chromium and chromium-driver)"
                             % path) or 77)
try:
    import selenium  # noqa: F401
except ImportError:
    raise SystemExit(log("SKIP: no python3-selenium") or 77)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
with open(CONF, "w") as f:
    f.write("""
sinks:
  - name: web
    type: http
    topics: ["%s"]
    batch: {max_records: 100, linger: 50ms}
    retry: {initial: 100ms, max: 1s}
    dead_letter_topic: %s
    options: {url: "http://127.0.0.1:%d/ingest"}
""" % (SINK_TOPIC, DLQ, srv.server_address[1]))
rc = 1
try:
    run_test(main, extra_args=["-c", CONF])
except SystemExit as e:
    rc = e.code
    raise
finally:
    srv.shutdown()
    if rc == 0 and not os.environ.get("TRIB_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        log("kept %s (screenshots)" % TMP)
