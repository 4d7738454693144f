# SPDX-License-Identifier: Apache-2.0
"""Sinks 0500: the plugin ABI and sink options at startup, and the `file`
sink end to end.

- A plugin built for another ABI version (the badabi.so fixture) is refused
  by --check-config with a message naming both versions.
- A bad sink option is a config error with file:line:column, from the
  plugin's own option schema; so is an unknown plugin type.
- 20,000 events into 4 partitions land in the file sink's JSON lines, every
  (partition, offset) exactly once, across a SIGTERM restart with more
  records produced in between; the group sink.files ends with lag 0.
"""
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import COLLECTOR, TestFailure, check_sanitizer, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

TMP = tempfile.mkdtemp(prefix="trib-0500.")
OUT = os.path.join(TMP, "out")
CONF = os.path.join(TMP, "collector.yaml")
FIXTURES = os.path.join(sinklib.BUILD, "tests", "sink-fixtures")


def check_config(text, env_extra=None):
    path = os.path.join(TMP, "check.yaml")
    sinklib.write_config(path, text)
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run([COLLECTOR, "-c", path, "--check-config"], capture_output=True,
                       text=True, env=env, timeout=60)
    check_sanitizer(p.stdout + p.stderr, "the collector's output (--check-config)")
    return p.returncode, p.stdout + p.stderr


def config_errors():
    rc, out = check_config("sinks:\n"
                           "  - name: old\n"
                           "    type: badabi\n"
                           "    topics: [t]\n",
                           {"TRIBUTARY_SINK_PATH": FIXTURES})
    log("bad ABI: %s" % out.strip())
    if rc == 0 or "badabi.so: ABI version 999, but this collector speaks sink ABI version 2" \
            not in out:
        raise TestFailure("a plugin of ABI version 999 was not refused clearly: %r" % out)

    rc, out = check_config("sinks:\n"
                           "  - name: f\n"
                           "    type: file\n"
                           "    topics: [t]\n"
                           "    options:\n"
                           "      path: /tmp/x\n"
                           "      rotate_bytes: lots\n"
                           "      fsink: false\n")
    log("bad options: %s" % out.strip())
    want = ["check.yaml:7:21: error: invalid size 'lots' for 'sinks[0].options.rotate_bytes'",
            "check.yaml:8:7: error: unknown key 'fsink' in sinks[0].options (did you mean "
            "'fsync'?)"]
    for w in want:
        if rc == 0 or w not in out:
            raise TestFailure("expected %r in %r" % (w, out))

    rc, out = check_config("sinks:\n"
                           "  - name: f\n"
                           "    type: nosuch\n"
                           "    topics: [t]\n")
    if rc == 0 or "check.yaml:3:11: error: no sink plugin 'nosuch'" not in out:
        raise TestFailure("an unknown sink type was not reported: %r" % out)

    rc, out = check_config("sinks:\n"
                           "  - name: f\n"
                           "    type: stdout\n"
                           "    topics: [\"/web[/\"]\n")
    if rc == 0 or "check.yaml:4:14: error: bad topic pattern" not in out:
        raise TestFailure("a bad topic regex was not reported at its position: %r" % out)

    rc, out = check_config("sinks:\n"
                           "  - {name: f, type: stdout, topics: [t]}\n"
                           "  - {name: f, type: stdout, topics: [u]}\n")
    if rc == 0 or "check.yaml:3:12: error: the name 'f' of sinks[1] is also sinks[0]'s" \
            not in out:
        raise TestFailure("a duplicate sink name was not reported at its position: %r" % out)


def read_lines():
    seen = {}
    for path in glob.glob(os.path.join(OUT, "*.jsonl")):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                k = (r["partition"], r["offset"])
                seen[k] = seen.get(k, 0) + 1
    return seen


def main(c):
    config_errors()
    sinklib.create_topic(c.bootstrap, "web.access", 4)
    where = sinklib.produce_events(c.bootstrap, "web.access", 0, 10000, 4)
    sinklib.wait_for("10000 lines", lambda: len(read_lines()) == 10000 or len(read_lines()),
                     60)
    c.restart("TERM")
    where.update(sinklib.produce_events(c.bootstrap, "web.access", 10000, 10000, 4))

    def done():
        lag = sinklib.group_lag(c, "sink.files")
        return (len(read_lines()) == 20000 and len(lag) == 4 and
                all(v[2] == 0 for v in lag.values())) or (len(read_lines()), lag)
    sinklib.wait_for("20000 lines and lag 0", done, 60)
    seen = read_lines()
    dups = {k: n for k, n in seen.items() if n != 1}
    if dups:
        raise TestFailure("records written more than once: %s" % list(dups.items())[:5])
    if set(seen) != set(where):
        raise TestFailure("lines do not match the produced records: %d missing, %d extra" % (
            len(set(where) - set(seen)), len(set(seen) - set(where))))
    log("20000 records, each (partition, offset) exactly once; lag 0")
    # The sink host's counters are on the collector's /metrics.
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        text = r.read().decode()
    delivered = [line for line in text.splitlines()
                 if line.startswith("tributary_sink_records_delivered_total{")
                 and 'sink="files"' in line]
    if not delivered or int(float(delivered[0].split()[-1])) < 10000:
        raise TestFailure("no sink counters on /metrics: %s" % delivered)
    lags = [line for line in text.splitlines() if line.startswith("tributary_sink_lag_records{")]
    if len(lags) != 4 or any(float(line.split()[-1]) != 0 for line in lags):
        raise TestFailure("sink lag on /metrics: %s" % lags)
    log("/metrics: %s" % delivered[0])


sinklib.write_config(CONF, """
sinks:
  - name: files
    type: file
    topics: ["/^web\\\\..*$/"]
    batch: {max_records: 1000, linger: 100ms}
    options: {path: "%s", rotate_bytes: 1MiB}
""" % OUT)
try:
    run_test(main, extra_args=["-c", CONF])
finally:
    shutil.rmtree(TMP, ignore_errors=True)
