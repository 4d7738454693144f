# SPDX-License-Identifier: Apache-2.0
"""The metrics and prometheus inputs: host metrics arrive every interval
with plausible values, and a Prometheus exporter's samples arrive with
their labels.

The metrics input samples every second; after several rounds the topic
must hold: cpu.usage_percent for cpu="total" and for each core, within
[0, 100] (rounds after the first); memory.total_bytes equal to
/proc/meminfo's MemTotal in bytes; load averages; network counters for
lo; filesystem usage for at least one real mount; and at least three
distinct sample times. The prometheus input scrapes a small HTTP server
of this test serving the text format (a counter with escaped labels, a
gauge, a histogram, a sample with its own timestamp).
"""
import http.server
import importlib
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")

EXPOSITION = b"""# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="get",path="/a \\"quoted\\" path"} 1027
http_requests_total{method="post",path="/b"} 3 1764151200000
# TYPE temperature_celsius gauge
temperature_celsius 21.5
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.1"} 5
rpc_seconds_bucket{le="+Inf"} 7
rpc_seconds_sum 0.9
rpc_seconds_count 7
"""


class Exporter(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(EXPOSITION)))
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, *args):
        pass


def mem_total_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise TestFailure("no MemTotal in /proc/meminfo")


def main(c):
    agentlib.require_kcat()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/metrics" % srv.server_address[1]
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: host
    inputs:
      - {type: metrics, interval: 1s}
    topic: agent.metrics
  - name: exporter
    inputs:
      - {type: prometheus, url: "%s", interval: 1s}
    topic: agent.prom
""" % url)
    try:
        with agentlib.guard(a):
            a.start()
            agentlib.wait_for(lambda: a.metrics().get("tributary_agent_scrapes_total", 0) >= 2 and
                              a.metrics().get("tributary_agent_metrics_samples_total", 0) > 0,
                              60, "two scrapes and some host samples")

            def times():
                return {v["@timestamp"] for v in agentlib.consume(c.bootstrap, "agent.metrics")
                        if v.get("metric") == "memory.total_bytes"}
            agentlib.wait_for(lambda: len(times()) >= 4, 60, "four rounds of host metrics",
                              interval=0.5)
            a.stop("TERM")
            vals = agentlib.consume(c.bootstrap, "agent.metrics")
            by = {}
            for v in vals:
                by.setdefault(v["metric"], []).append(v)
            log("%d host metric events, %d metrics: %s" % (len(vals), len(by), sorted(by)))
            for name in ("cpu.usage_percent", "memory.total_bytes", "memory.available_bytes",
                         "load.1m", "network.receive_bytes_per_sec", "filesystem.used_percent"):
                if name not in by:
                    raise TestFailure("no %s samples" % name)
            cpu = by["cpu.usage_percent"]
            cores = {v["cpu"] for v in cpu}
            if "total" not in cores or len(cores) < 2:
                raise TestFailure("cpu samples for %s: want total and each core" % sorted(cores))
            for v in cpu:
                if not isinstance(v["value"], (int, float)) or not 0 <= v["value"] <= 100:
                    raise TestFailure("cpu.usage_percent out of [0, 100]: %r" % v)
            want = mem_total_bytes()
            for v in by["memory.total_bytes"]:
                if v["value"] != want:
                    raise TestFailure("memory.total_bytes %r, MemTotal says %d" % (v["value"], want))
            if not any(v.get("interface") == "lo" for v in by["network.receive_bytes_per_sec"]):
                raise TestFailure("no network sample for lo")
            for v in by["filesystem.used_percent"]:
                if not 0 <= v["value"] <= 100 or not v.get("mountpoint"):
                    raise TestFailure("bad filesystem sample %r" % v)
            for v in vals:
                if v.get("host") is None or v.get("source") != "metrics":
                    raise TestFailure("event without host or source: %r" % v)
            prom = agentlib.consume(c.bootstrap, "agent.prom")
            pby = {}
            for v in prom:
                pby.setdefault((v["metric"], v.get("method"), v.get("le")), v)
            log("%d prometheus events" % len(prom))
            get = pby.get(("http_requests_total", "get", None))
            if get is None or get["value"] != 1027 or get["path"] != '/a "quoted" path' or \
                    get.get("type") != "counter" or get.get("source") != url:
                raise TestFailure("http_requests_total{method=get} wrong: %r" % get)
            post = pby.get(("http_requests_total", "post", None))
            if post is None or post["@timestamp"] != "2025-11-26T10:00:00.000Z":
                raise TestFailure("the sample's own timestamp was not kept: %r" % post)
            t = pby.get(("temperature_celsius", None, None))
            if t is None or t["value"] != 21.5 or t.get("type") != "gauge":
                raise TestFailure("temperature_celsius wrong: %r" % t)
            inf = pby.get(("rpc_seconds_bucket", None, "+Inf"))
            if inf is None or inf["value"] != 7 or inf.get("type") != "histogram":
                raise TestFailure("rpc_seconds_bucket{le=+Inf} wrong: %r" % inf)
    finally:
        srv.shutdown()


run_test(main)
