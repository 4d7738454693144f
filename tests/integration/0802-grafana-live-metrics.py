#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Every query of every Grafana dashboard names metrics the running daemons export,
with labels they carry.

The dashboards are the JSON files with panels under conf/ and packaging/.
Their PromQL (panel targets and templating queries) is parsed: each vector
selector's metric name and label matchers, the labels of `by (...)` and
`without (...)` clauses and the {{label}}s of legend formats. The daemons
run with what the dashboards look at: a collector with a file sink and
an HTTP sink whose receiver is gone (so the sink is down with an error
class), a consumer group that committed offsets (the group lag), and an
agent with a tail input and its HTTP endpoint. Their /metrics are scraped and
every name a query uses must be a family there (a histogram's _bucket,
_sum and _count are its own), every label it matches, groups by or shows
must be one a sample of that family carries (instance and job are
Prometheus' target labels, le a histogram bucket's), and an equality
matcher's value must be one the samples have. The few families only a
ZooKeeper-backed collector or a failing disk shows (SOURCE_ONLY) have their
labels checked against the source that renders them.
"""
import glob
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)
from tributary_harness import ROOT, TestFailure, log, run_test  # noqa: E402
from zk_cluster import wait_for  # noqa: E402
import importlib  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")

TARGET_LABELS = {"instance", "job"}
HIST = ("_bucket", "_sum", "_count")
# Families a standalone collector does not show, or shows without samples
# but under a fault (a disk that fails): the cluster's and ZooKeeper's need
# the ZooKeeper backend (test 0107 and the 06xx tests run it). Their labels
# are the ones listed here, checked against the source that renders them;
# every other family must be on a live /metrics.
SOURCE_ONLY = {
    "tributary_storage_partition_error": ({"topic", "partition", "reason"},
                                          "collector/server/server.c"),
    "tributary_cluster_brokers": (set(), "collector/cluster/zk.c"),
    "tributary_cluster_controller": (set(), "collector/cluster/zk.c"),
    "tributary_zookeeper_session_state": (set(), "collector/cluster/zk.c"),
    "tributary_zookeeper_session_expirations_total": (set(), "collector/cluster/zk.c"),
}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "rate", "irate", "increase", "delta", "idelta",
    "deriv", "histogram_quantile", "label_values", "label_replace", "abs", "clamp_min",
    "clamp_max", "time", "vector", "scalar", "absent", "changes", "resets", "sort", "sort_desc",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "predict_linear", "round", "ceil", "floor", "ln", "log2", "log10", "exp",
    "sqrt", "timestamp", "inf", "nan", "query_result", "metrics",
}


# ---- PromQL ---------------------------------------------------------------------------------

TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|
                       (?P<dur>\[[^\]]*\])|
                       (?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)|
                       (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)|
                       (?P<id>[A-Za-z_:][A-Za-z0-9_:]*)|
                       (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>]))""", re.X)


def tokens(expr):
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise TestFailure("cannot parse PromQL at %r in %r" % (expr[pos:pos + 30], expr))
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


def parse(expr):
    """(selectors, groupings, legend-able labels) of one expression:
    selectors [(metric, [(label, op, value)])], groupings [(labels, {metrics inside})]."""
    toks = tokens(expr)
    selectors, groupings = [], []
    # Parenthesis spans: for a grouping clause, the metrics of the aggregation's argument.
    i = 0
    spans = []  # (index of the grouping's labels list, start token of argument)
    while i < len(toks):
        kind, v = toks[i]
        if kind == "id" and toks[i + 1:i + 2] == [("op", "{")] or \
                (kind == "id" and v not in PROMQL_WORDS and toks[i + 1:i + 2] != [("op", "(")]):
            name, matchers = v, []
            if toks[i + 1:i + 2] == [("op", "{")]:
                j = i + 2
                while toks[j] != ("op", "}"):
                    lab, op, val = toks[j][1], toks[j + 1][1], toks[j + 2][1]
                    matchers.append((lab, op, val[1:-1]))
                    j += 3
                    if toks[j] == ("op", ","):
                        j += 1
                i = j
            selectors.append((name, matchers, i))
        elif kind == "id" and v in ("by", "without"):
            j = i + 2
            labels = []
            while toks[j] != ("op", ")"):
                if toks[j][0] == "id":
                    labels.append(toks[j][1])
                j += 1
            spans.append((v, labels, i, j))
            i = j
        i += 1
    for v, labels, start, end in spans:
        # The aggregation's argument is the parenthesised group right after the clause,
        # or (for `sum(x) by (l)`) the one right before it.
        if end + 1 < len(toks) and toks[end + 1] == ("op", "("):
            lo, depth, k = end + 1, 0, end + 1
            while True:
                if toks[k] == ("op", "("):
                    depth += 1
                elif toks[k] == ("op", ")"):
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            hi = k
        else:
            hi, depth, k = start - 1, 0, start - 1
            while True:
                if toks[k] == ("op", ")"):
                    depth += 1
                elif toks[k] == ("op", "("):
                    depth -= 1
                    if depth == 0:
                        break
                k -= 1
            lo = k
        inside = {n for n, _, pos in selectors if lo <= pos <= hi}
        groupings.append((v, labels, inside))
    return [(n, m) for n, m, _ in selectors], groupings


def dashboard_queries(d):
    """(where, expr, legend) of every panel target (rows' nested panels too) and
    templating query."""
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(d.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append(("panel %r" % p.get("title"), t["expr"], t.get("legendFormat", "")))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)\s*", q or "")
        if not m:
            raise TestFailure("variable %r: query %r is not label_values(selector, label)"
                              % (v.get("name"), q))
        out.append(("variable %r" % v.get("name"), "sum by (%s) (%s)" % (m.group(2), m.group(1)),
                    ""))
    return out


# ---- /metrics -------------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(addr):
    """{family: {label: {values}}} of one /metrics, with every # TYPE family present."""
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=10) as r:
        text = r.read().decode()
    fams, types = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            types[m.group(1)] = m.group(2)
            fams.setdefault(m.group(1), {})
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise TestFailure("%s: unparsable line %r" % (addr, line))
        name = m.group(1)
        for s in HIST:
            if name.endswith(s) and types.get(name[:-len(s)]) == "histogram":
                name = name[:-len(s)]
        labels = fams.setdefault(name, {})
        for k, v in LABEL.findall(m.group(2) or ""):
            labels.setdefault(k, set()).add(v)
    return fams


def family(name, fams):
    if name in fams:
        return name, set()
    for s in HIST:
        if name.endswith(s) and name[:-len(s)] in fams:
            return name[:-len(s)], {"le"} if s == "_bucket" else set()
    return None, set()


def check_dashboard(path, fams):
    with open(path) as f:
        d = json.load(f)
    problems, used = [], set()
    for where, expr, legend in dashboard_queries(d):
        selectors, groupings = parse(expr)
        if not selectors:
            problems.append("%s: no metric in %r" % (where, expr))
        carried = {}
        for name, matchers in selectors:
            fam, extra = family(name, fams)
            if fam is None and name in SOURCE_ONLY:
                fam, fams = name, dict(fams, **{name: {}})
            if fam is None:
                problems.append("%s: %s is not on the daemons' /metrics" % (where, name))
                continue
            used.add(fam)
            labels = fams[fam]
            have = set(labels) | extra | TARGET_LABELS
            if fam in SOURCE_ONLY:
                have |= SOURCE_ONLY[fam][0]
            carried[name] = have
            for lab, op, val in matchers:
                if lab not in have:
                    problems.append("%s: %s has no label %s (it has %s)"
                                    % (where, name, lab, sorted(labels)))
                elif op == "=" and lab in labels and val not in labels[lab]:
                    problems.append("%s: %s{%s=%r}: no sample has that value (%s)"
                                    % (where, name, lab, val, sorted(labels[lab])))
        for kind, labs, inside in groupings:
            for lab in labs:
                for name in inside:
                    if name in carried and lab not in carried[name]:
                        problems.append("%s: %s (%s) names label %s that %s does not carry"
                                        % (where, kind, ",".join(labs), lab, name))
        shown = set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend))
        outer = groupings[-1][1] if groupings and groupings[-1][0] == "by" else None
        for lab in shown:
            if outer is not None and lab not in outer and expr.lstrip().startswith(
                    ("sum", "min", "max", "avg", "count", "histogram_quantile")):
                problems.append("%s: legend shows {{%s}}, the query keeps only %s"
                                % (where, lab, outer))
            for name, have in carried.items():
                if lab not in have:
                    problems.append("%s: legend shows {{%s}} that %s does not carry"
                                    % (where, lab, name))
    return d, problems, used


# ---- the daemons ----------------------------------------------------------------------------

def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SINK_CONF = """sinks:
  - name: files
    type: file
    topics: ["dash.sink"]
    batch: {max_records: 100, linger: 50ms}
    options: {path: "%s"}
  - name: gone
    type: http
    topics: ["dash.sink"]
    batch: {max_records: 100, linger: 50ms}
    options: {url: "http://127.0.0.1:%d/", connect_timeout: 200ms, timeout: 1s}
"""


def find_dashboards():
    paths = sorted(glob.glob(os.path.join(ROOT, "conf", "**", "*.json"), recursive=True)
                   + glob.glob(os.path.join(ROOT, "packaging", "**", "*.json"), recursive=True))
    dashboards = []
    for p in paths:
        with open(p) as f:
            try:
                d = json.load(f)
            except ValueError as e:
                raise TestFailure("%s: not JSON: %s" % (p, e))
        if isinstance(d, dict) and "panels" in d:
            dashboards.append(p)
    names = {os.path.relpath(p, ROOT) for p in dashboards}
    want = {"conf/grafana/tributary-collector.json", "conf/grafana/tributary-agent.json"}
    if not want <= names:
        raise TestFailure("dashboards missing: %s (found %s)" % (sorted(want - names), names))
    return dashboards


def check_source_only():
    for src, (labels, where) in SOURCE_ONLY.items():
        with open(os.path.join(ROOT, where)) as f:
            text = f.read()
        if '"%s"' % src not in text or not all('%s=\\"' % lab in text for lab in labels):
            raise TestFailure("%s: %s or its labels %s not found" % (where, src, sorted(labels)))


def main(c):
    dashboards = find_dashboards()
    check_source_only()
    pipelines = """  - name: logs
    inputs:
      - type: tail
        paths: ["%s/*.log"]
        read_from: beginning
    topic: dash.agent
""" % TMP
    a = agentlib.Agent(TMP, c.bootstrap, pipelines,
                       agent_extra="  metrics: 127.0.0.1:%d\n" % dead_port())
    with open(a.conf) as f:
        agent_addr = re.search(r"metrics: (\S+)", f.read()).group(1)
    with agentlib.guard(a):
        with open(os.path.join(TMP, "app.log"), "w") as f:
            for i in range(50):
                f.write("line %d\n" % i)
        traffic(c.bootstrap)
        a.start()
        wait_for("the agent to have 50 events acknowledged",
                 lambda: agent_acked(agent_addr) >= 50, 60)
        wait_for("the http sink to be down",
                 lambda: "tributary_sink_error_info{" in scrape_samples(c.metrics), 60)
        fams = scrape(c.metrics)
        afams = scrape(agent_addr)
        a.stop("TERM")
    merged = {}
    for src in (fams, afams):
        for k, v in src.items():
            merged.setdefault(k, {})
            for lab, vals in v.items():
                merged[k].setdefault(lab, set()).update(vals)
    log("scraped %d collector and %d agent metric families" % (len(fams), len(afams)))
    problems = []
    for p in dashboards:
        d, probs, used = check_dashboard(p, merged)
        problems += ["%s: %s" % (os.path.relpath(p, ROOT), x) for x in probs]
        log("%s: %d queries over %d metric families%s"
            % (os.path.relpath(p, ROOT), len(dashboard_queries(d)), len(used),
               ": all on /metrics with their labels" if not probs
               else ": %d problems" % len(probs)))
    if problems:
        raise TestFailure("dashboard queries that do not match the daemons:\n  "
                          + "\n  ".join(problems))


def scrape_samples(addr):
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=10) as r:
        return "\n".join(l for l in r.read().decode().splitlines() if not l.startswith("#"))


def agent_acked(addr):
    try:
        text = scrape_samples(addr)
    except OSError:
        return 0
    m = re.search(r"^tributary_agent_events_acked_total(?:\{\})? (\S+)", text, re.M)
    return float(m.group(1)) if m else 0


def traffic(bootstrap):
    """Topics with records, a group that committed part of one, records for the sinks,
    one error answered."""
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(t, 1, 1) for t in ("dash.t", "dash.sink", "dash.agent")])
    for f in fs.values():
        f.result(60)
    # An error the broker returns and counts (CreateTopics: TOPIC_ALREADY_EXISTS).
    try:
        admin.create_topics([NewTopic("dash.t", 1, 1)])["dash.t"].result(60)
        raise TestFailure("creating dash.t twice succeeded")
    except confluent_kafka.KafkaException:
        pass
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(30):
        p.produce("dash.t", key=b"k", value=b"v%d" % i)
        p.produce("dash.sink", value=b'{"i":%d}' % i)
    if p.flush(60) != 0:
        raise TestFailure("the producer did not deliver everything")
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "dash-group",
                                  "enable.auto.commit": False})
    c.commit(offsets=[confluent_kafka.TopicPartition("dash.t", 0, 10)], asynchronous=False)
    c.close()


TMP = tempfile.mkdtemp(prefix="trib-0802.")
CONF = os.path.join(TMP, "collector.yaml")
with open(CONF, "w") as f:
    f.write(SINK_CONF % (os.path.join(TMP, "sink-out"), dead_port()))
try:
    run_test(main, extra_args=["-c", CONF])
finally:
    shutil.rmtree(TMP, ignore_errors=True)
