#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Grafana dashboards in conf/grafana/ parse and name only metrics that exist.

Each dashboard is JSON with a uid, a title and panels; every panel has a
target; every tributary_* metric an expression names is exposed by the
code (a string literal in collector/, agent/, plugins/ or common/; a
histogram's _bucket/_sum/_count are its own name's). A collector started
here shows on /metrics every collector metric the dashboard names that
needs no sink or cluster. `cmake --install` of each component into a
DESTDIR puts its dashboard under /usr/share/tributary/grafana/.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import shutil
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tributary_harness import ROOT, TestFailure, log, run_test  # noqa: E402

METRIC = re.compile(r"\btributary_[a-z0-9_]+")
HIST = ("_bucket", "_sum", "_count")


def source_names():
    text = []
    for top in ("collector", "agent", "plugins", "common"):
        for path in glob.glob(os.path.join(ROOT, top, "**", "*.c"), recursive=True):
            with open(path, encoding="utf-8", errors="replace") as f:
                text.append(f.read())
    return set(re.findall(r'"(tributary_[a-z0-9_]+)', "\n".join(text)))


def dashboard_metrics(path):
    with open(path) as f:
        d = json.load(f)
    for key in ("uid", "title", "panels"):
        if key not in d:
            raise TestFailure("%s: no %s" % (path, key))
    names = set()
    panels = [p for p in d["panels"] if p.get("type") != "row"]
    if not panels:
        raise TestFailure("%s: no panels" % path)
    for p in panels:
        if not p.get("targets"):
            raise TestFailure("%s: panel %r has no target" % (path, p.get("title")))
        for t in p["targets"]:
            found = METRIC.findall(t.get("expr", ""))
            if not found:
                raise TestFailure("%s: panel %r: no tributary metric in %r"
                                  % (path, p.get("title"), t.get("expr")))
            names.update(found)
    return d, names


def base_name(n, known):
    """The metric family n belongs to (a histogram's for _bucket/_sum/_count), or None."""
    for s in HIST:
        if n.endswith(s) and n[:-len(s)] in known:
            return n[:-len(s)]
    return n if n in known else None


def main(c):
    known = source_names()
    if len(known) < 50:
        raise TestFailure("found only %d metric names in the sources" % len(known))
    paths = sorted(glob.glob(os.path.join(ROOT, "conf", "grafana", "*.json")))
    expect = {os.path.join(ROOT, "conf", "grafana", "tributary-%s.json" % k)
              for k in ("collector", "agent")}
    if not expect <= set(paths):
        raise TestFailure("dashboards missing: %s" % sorted(expect - set(paths)))
    used = {}
    for path in paths:
        d, names = dashboard_metrics(path)
        missing = sorted(n for n in names if base_name(n, known) is None)
        if missing:
            raise TestFailure("%s names metrics the code does not expose: %s" % (path, missing))
        used[os.path.basename(path)] = names
        log("%s: %d panels, %d metrics, all exposed by the code"
            % (os.path.basename(path), len(d["panels"]), len(names)))
    # The collector's own metrics (no sink, no zookeeper) are on a live /metrics.
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        live = set(re.findall(r"^# TYPE (tributary_[a-z0-9_]+)", r.read().decode(), re.M))
    want = {base_name(n, known) for n in used["tributary-collector.json"]
            if not n.startswith(("tributary_sink_", "tributary_cluster_", "tributary_zookeeper_"))}
    absent = sorted(want - live)
    if absent:
        raise TestFailure("the collector dashboard names metrics absent from /metrics: %s"
                          % absent)
    log("all %d collector metrics of the dashboard are on a live /metrics" % len(want))
    build = os.environ.get("TRIB_BUILD_DIR", os.path.join(ROOT, "build"))
    dest = tempfile.mkdtemp(prefix="trib-0801.")
    try:
        for comp in ("collector", "agent"):
            p = subprocess.run(["cmake", "--install", build, "--component", comp],
                               env=dict(os.environ, DESTDIR=dest), capture_output=True,
                               text=True)
            if p.returncode != 0:
                raise TestFailure("cmake --install %s: %s" % (comp, p.stderr[-2000:]))
            hits = glob.glob(os.path.join(dest, "**", "share", "tributary", "grafana",
                                          "tributary-%s.json" % comp), recursive=True)
            if len(hits) != 1:
                raise TestFailure("the %s component installs no dashboard" % comp)
            log("%s installs %s" % (comp, os.path.relpath(hits[0], dest)))
    finally:
        shutil.rmtree(dest, ignore_errors=True)


run_test(main)
