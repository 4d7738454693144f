#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The daemon's outside: metrics and health, the ready file, flags, configuration.

After a kcat round trip the metrics endpoint shows requests by API, bytes and
records in and out, latency histograms and the partition's offsets and size;
an offset commit counts in __consumer_offsets' partition counters but not in
the Produce totals; /health answers 200 and unknown paths 404. The ready file has exactly the
`kafka HOST:PORT` and `metrics HOST:PORT` lines. --check-config accepts the
shipped conf/collector.yaml (exit 0) and reports a bad file as
file:line:col errors (exit 2). --metrics off writes `metrics off`.
--log-format json logs one JSON object per line. A data directory refuses a
different --node-id. A collector started from a YAML file uses its settings
(auto_create_topics: false, default_partitions: 3).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "broker"))
from kafka_raw import Conn, batch  # noqa: E402
from tributary_harness import (COLLECTOR, ROOT, Collector, TestFailure,  # noqa: E402
                               check_sanitizer, log, run_test)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(text, name, labels=""):
    key = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise TestFailure("metric %s not found" % key)


def main(c):
    with open(os.path.join(c.tmp, "ready")) as f:
        lines = f.read().splitlines()
    if [l.split()[0] for l in lines] != ["kafka", "metrics"]:
        raise TestFailure("ready file: %r" % lines)
    p = subprocess.run(["kcat", "-b", c.bootstrap, "-P", "-t", "m"], input=b"a\nb\nc\n",
                       capture_output=True, timeout=60)
    if p.returncode:
        raise TestFailure("kcat -P: %s" % p.stderr.decode())
    p = subprocess.run(["kcat", "-b", c.bootstrap, "-C", "-t", "m", "-o", "beginning", "-e", "-q"],
                       capture_output=True, timeout=60)
    if p.stdout.split() != [b"a", b"b", b"c"]:
        raise TestFailure("kcat -C: %r" % p.stdout)
    status, text = get("http://%s/metrics" % c.metrics)
    if status != 200:
        raise TestFailure("/metrics: %d" % status)
    part = 'topic="m",partition="0"'
    checks = {
        ("tributary_partition_log_end_offset", part): 3,
        ("tributary_partition_high_watermark", part): 3,
        ("tributary_partition_log_start_offset", part): 0,
        ("tributary_partition_records_in_total", part): 3,
        ("tributary_records_in_total", ""): 3,
        ("tributary_topics", ""): 1,
    }
    for (name, labels), want in checks.items():
        got = sample(text, name, labels)
        if got != want:
            raise TestFailure("%s{%s} = %g, expected %g" % (name, labels, got, want))
    for name, labels in [("tributary_requests_total", 'api="Produce"'),
                         ("tributary_requests_total", 'api="Fetch"'),
                         ("tributary_requests_total", 'api="ApiVersions"'),
                         ("tributary_bytes_in_total", ""), ("tributary_records_out_total", ""),
                         ("tributary_partition_size_bytes", part),
                         ("tributary_request_duration_seconds_count", 'api="Metadata"')]:
        if sample(text, name, labels) <= 0:
            raise TestFailure("%s{%s} is not positive" % (name, labels))
    if 'tributary_request_duration_seconds_bucket{api="Produce",le="+Inf"}' not in text:
        raise TestFailure("no Produce latency histogram")
    # The group coordinator writes through the partition's append path: its
    # records count in __consumer_offsets' partition counters, and not in the
    # totals of what clients produced.
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g0107",
                     "enable.auto.commit": False})
    try:
        cons.commit(offsets=[TopicPartition("m", 0, 3)], asynchronous=False)
    finally:
        cons.close()
    _, text = get("http://%s/metrics" % c.metrics)
    prefix = 'tributary_partition_records_in_total{topic="__consumer_offsets",'
    stored = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(prefix))
    if stored < 1:
        raise TestFailure("the offset commit is not counted in __consumer_offsets' partitions")
    if sample(text, "tributary_records_in_total") != 3:
        raise TestFailure("tributary_records_in_total counts the coordinator's records: %g"
                          % sample(text, "tributary_records_in_total"))
    conn = Conn(c.bootstrap)
    conn.produce("m", 9, batch(1))  # an error, counted by code
    conn.close()
    _, text = get("http://%s/metrics" % c.metrics)
    if sample(text, "tributary_request_errors_total",
              'api="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"') != 1:
        raise TestFailure("the error was not counted")
    status, body = get("http://%s/health" % c.metrics)
    if (status, body) != (200, "ok\n"):
        raise TestFailure("/health: %d %r" % (status, body))
    if get("http://%s/nope" % c.metrics)[0] != 404:
        raise TestFailure("/nope did not answer 404")
    log("metrics and health: ok")

    # A data directory remembers its node id.
    c.stop("TERM")
    p = subprocess.run([COLLECTOR, "--listen", "127.0.0.1:0", "--metrics", "off", "--data-dir",
                        c.data, "--node-id", "2"], capture_output=True, timeout=60)
    check_sanitizer(p.stderr, "the collector's output (--node-id 2)")
    if p.returncode == 0 or b"belongs to node 1" not in p.stderr:
        raise TestFailure("--node-id 2 on node 1's data: status %d, %r"
                          % (p.returncode, p.stderr[-500:]))
    c.start()

    # --check-config.
    conf = os.path.join(ROOT, "conf", "collector.yaml")
    p = subprocess.run([COLLECTOR, "--config", conf, "--check-config"], capture_output=True,
                       timeout=30)
    check_sanitizer(p.stderr, "the collector's output (--check-config %s)" % conf)
    if p.returncode != 0:
        raise TestFailure("--check-config on %s: %d %s" % (conf, p.returncode, p.stderr.decode()))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("node_id: 1\nlistne: 127.0.0.1:1\nserver:\n  max_request_bytes: 12\n")
    p = subprocess.run([COLLECTOR, "--config", f.name, "--check-config"], capture_output=True,
                       timeout=30)
    check_sanitizer(p.stderr, "the collector's output (--check-config, a bad file)")
    err = p.stderr.decode()
    os.unlink(f.name)
    if p.returncode != 2 or ("%s:2:1: error: unknown key 'listne'" % f.name) not in err or \
            ("%s:4:22: error:" % f.name) not in err:
        raise TestFailure("--check-config on a bad file: %d %r" % (p.returncode, err))
    log("--check-config: ok")

    # --metrics off, --log-format json, settings from a file.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("auto_create_topics: false\ndefault_partitions: 3\n")
    other = Collector(["--metrics", "off", "--log-format", "json", "--config", f.name])
    try:
        other.start()
        with open(os.path.join(other.tmp, "ready")) as r:
            if r.read().splitlines()[1] != "metrics off":
                raise TestFailure("ready file with --metrics off")
        conn = Conn(other.bootstrap)
        md, _ = conn.metadata(["nope"])
        if md["nope"][0] != 3:
            raise TestFailure("auto_create_topics: false still created: %r" % md)
        if conn.create_topic("three", -1)[0] != 0 or conn.metadata(["three"])[0]["three"][1] != [
                0, 1, 2]:
            raise TestFailure("default_partitions: 3 not applied")
        conn.close()
        other.stop("TERM")
        with open(other.logs[-1]) as lf:
            for line in lf:
                json.loads(line)
    finally:
        if other.proc is not None:
            other.stop("KILL")
        os.unlink(f.name)
        shutil.rmtree(other.tmp, ignore_errors=True)
    log("--metrics off, --log-format json, YAML settings: ok")


if __name__ == "__main__":
    run_test(main)
