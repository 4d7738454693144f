#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-sinks: each sink type beside its target's own bulk loader,
measured alternately in the same run on the same target.

    tributary-bench-sinks [--records N] [--partitions P] [--max-records B]
                          [--workers W] [--runs R] [--sinks file,postgres,...]
                          [--before DIR] [--repo DIR] [--bin DIR]

1. Throwaway targets on ephemeral 127.0.0.1 ports, started like the tests
   start them (tests/integration/0599_sinklib.py): PostgreSQL 15 with its
   default durability (fsync and synchronous_commit on), Debian's
   clickhouse-server, and an HTTP receiver (a separate Python process that
   reads each body, keep-alive, and keeps the bodies in memory until asked
   for them: the sink's become curl's input).
2. A collector without sinks takes N agent-shaped events (~240 bytes of JSON
   each) into P partitions, and is stopped.
3. For each run and each sink type, in turn:
   - the collector starts with one sink of that type (a new name, so it
     delivers the whole topic); the time from the collector being ready
     until its metric tributary_sink_records_delivered_total reaches N
     (durable in the target and committed) gives the sink's figure. It
     includes the sink's start: plugin load, connection, table creation.
     The collector's CPU-seconds (utime + stime, its start included) and
     peak RSS (VmHWM) are read before it stops.
   - with --before DIR, the same again with the plugins of DIR (an earlier
     build's lib/tributary/sinks, through TRIBUTARY_SINK_PATH) and this
     collector: "sink before". The two passes alternate which goes first.
   - then the baselines load the same rows the sink wrote into the same
     target:
       file        cat of the sink's files into one file, then sync of it
       postgres    psql \\copy FROM of the table's rows (COPY text) into an
                   empty table of the same shape, primary key included
       clickhouse  clickhouse-client INSERT ... FORMAT RowBinary, and then
                   FORMAT JSONEachRow, of the table's rows into an empty
                   table of the same engine (the client parses the rows and
                   sends the server compressed Native blocks)
       http        curl --data-binary of the bodies the sink sent, as one
                   body, to the same receiver
     Their CPU-seconds and peak RSS are the client process's (GNU time).
   - "server cpu s" is the target's CPU-seconds during each load (the
     PostgreSQL server's process tree, clickhouse-server, the receiver).
     ClickHouse's background merges are waited for before and after each
     load and counted in it: a sink's many small parts cost merges.
Medians over R runs are printed, and the median of each run's
sink/baseline ratio (sink and baseline ran back to back, under the same
load); figures are only comparable within one run (the machine's load
changes between runs).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
TICK = os.sysconf("SC_CLK_TCK")

RECEIVER = r'''
import http.server, sys, threading
lock = threading.Lock()
saved = {}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        left = int(self.headers["Content-Length"])
        keep = self.path.startswith("/save/") or self.path.startswith("/dump/")
        parts = []
        while left > 0:
            b = self.rfile.read(min(left, 1 << 20))
            if not b:
                break
            left -= len(b)
            if keep:
                parts.append(b)
        if self.path.startswith("/save/"):
            with lock:
                saved.setdefault(self.path.split("/")[2], []).extend(parts)
        elif self.path.startswith("/dump/"):
            with lock:
                bodies = saved.pop(self.path.split("/")[2], [])
            with open(b"".join(parts).decode(), "wb") as f:
                for b in bodies:
                    f.write(b)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
'''


def proc_usage(pid):
    """(CPU-seconds, peak RSS in MiB) of a running process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def tree_cpu(pid):
    """CPU-seconds of a process and its descendants: its own, its reaped children's
    (cutime, cstime) and its live children's, from /proc; 0 once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    cpu = sum(int(x) for x in fields[11:15]) / TICK
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        kids = []
    return cpu + sum(tree_cpu(k) for k in kids)


def timed(argv, stdin=None, stdout=None):
    """Runs argv; (seconds, CPU-seconds, peak RSS MiB) of that process alone. GNU time
    measures it: the rusage of a child of this (large) process would report this
    process's RSS as its peak, since the kernel counts the memory a child had before
    exec."""
    with tempfile.NamedTemporaryFile("r", prefix="trib-bench-time.") as tf:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name] + argv,
                           stdin=stdin, stdout=stdout or subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        dt = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (argv[0], p.stderr.decode()[-500:]))
        u, s, m = tf.read().split()[-3:]
    return dt, float(u) + float(s), int(m) / 1024


def delivered(c, name):
    body = urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10).read().decode()
    m = re.search(r'^tributary_sink_records_delivered_total\{sink="%s"\} (\d+)' % name, body,
                  re.M)
    extra = dict(re.findall(r'^tributary_sink_plugin_total\{sink="%s",name="((?:postgres_)?(?:'
                            r'batches_\w+|direct_conflicts)|clickhouse_inserts)"\} (\d+)' % name,
                            body, re.M))
    return (int(m.group(1)) if m else 0), extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--max-records", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sinks", default="file,postgres,clickhouse,http")
    ap.add_argument("--repo", default=os.environ.get("TRIB_REPO", ""))
    ap.add_argument("--bin", default=HERE)
    ap.add_argument("--before", metavar="DIR",
                    help="also run each sink from the plugins in DIR (an earlier build's "
                         "lib/tributary/sinks), in the same runs, alternating with this build's")
    a = ap.parse_args()
    kinds = [k for k in a.sinks.split(",") if k]
    for k in kinds:
        if k not in ("file", "postgres", "clickhouse", "http"):
            ap.error("unknown sink type %r" % k)
    repo = a.repo
    if not repo:
        # build/bin -> the source tree is found through CMakeCache.txt
        cache = os.path.join(a.bin, "..", "CMakeCache.txt")
        for line in open(cache):
            if line.startswith("tributary_SOURCE_DIR:STATIC="):
                repo = line.split("=", 1)[1].strip()
    sys.path.insert(0, os.path.join(repo, "tests", "integration", "lib"))
    os.environ["TRIB_BIN_DIR"] = os.path.abspath(a.bin)
    os.environ["TRIB_BUILD_DIR"] = os.path.abspath(os.path.join(a.bin, ".."))
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "sinklib", os.path.join(repo, "tests", "integration", "0599_sinklib.py"))
    sinklib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sinklib)
    import tributary_harness as th
    th.log = lambda msg: None
    sinklib.log = lambda msg: None

    tmp = tempfile.mkdtemp(prefix="trib-bench-sinks.")
    pg = sinklib.Postgres(tmp, settings=()) if "postgres" in kinds else None
    ch = sinklib.ClickHouse(tmp) if "clickhouse" in kinds else None
    recv = None
    c = None
    try:
        if pg:
            pg.start()
        if ch:
            ch.start()
        save = os.path.join(tmp, "http-bodies")
        os.makedirs(save)
        if "http" in kinds:
            recv = subprocess.Popen([sys.executable, "-c", RECEIVER, save],
                                    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            http_port = int(recv.stdout.readline())
        c = th.Collector().start()
        sinklib.create_topic(c.bootstrap, "web.access", a.partitions)
        t0 = time.monotonic()
        sinklib.produce_events(c.bootstrap, "web.access", 0, a.records, a.partitions)
        print("produced %d events into %d partitions in %.1f s" % (
            a.records, a.partitions, time.monotonic() - t0))
        c.stop("TERM")

        def server_cpu(kind):
            """CPU-seconds the target has used so far (its whole process tree)."""
            if kind == "postgres":
                with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
                    return tree_cpu(int(f.readline()))
            if kind == "clickhouse":
                return tree_cpu(ch.proc.pid)
            if kind == "http":
                return tree_cpu(recv.pid)
            return 0.0

        def ch_quiet():
            """Waits (at most 120 s) for ClickHouse's background merges to end, so that
            one load's merges are not counted in the next one's server CPU."""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if ch.sql("SELECT count() FROM system.merges") == "0":
                    return
                time.sleep(0.1)

        def run_sink(name, kind, options, plugins=None):
            conf = os.path.join(tmp, "collector-%s.yaml" % name)
            sinklib.write_config(conf, """
sinks:
  - name: %s
    type: %s
    topics: ["web.access"]
    workers: %d
    batch: {max_records: %d, max_bytes: 16MiB, linger: 100ms}
    options: %s
""" % (name, kind, a.workers, a.max_records, options))
            c.extra = ["-c", conf]
            c.env = dict(os.environ, TRIBUTARY_SINK_PATH=plugins) if plugins else None
            if kind == "clickhouse":
                ch_quiet()
            srv0 = server_cpu(kind)
            c.start()
            t0 = time.monotonic()
            deadline = t0 + 600
            while True:
                n, extra = delivered(c, name)
                if n >= a.records:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("sink %s delivered %d of %d in 600 s" % (
                        name, n, a.records))
                time.sleep(0.02)
            dt = time.monotonic() - t0
            cpu, rss = proc_usage(c.proc.pid)
            c.stop("TERM")
            if kind == "clickhouse":
                ch_quiet()  # the merges of the sink's parts are the sink's server cost
            return dt, cpu, rss, extra, server_cpu(kind) - srv0

        def run_base(kind, argv, stdin=None, stdout=None):
            if kind == "clickhouse":
                ch_quiet()
            srv0 = server_cpu(kind)
            b = timed(argv, stdin=stdin, stdout=stdout)
            if kind == "clickhouse":
                ch_quiet()
            return b + (server_cpu(kind) - srv0,)

        def sink_pass(kind, name, plugins):
            """Runs one sink over the whole topic; (figures, {baseline: input file})."""
            if kind == "file":
                d = os.path.join(tmp, name)
                s = run_sink(name, kind, '{path: "%s"}' % d, plugins)
                files = sorted(os.path.join(d, f) for f in os.listdir(d))
                return s, {"files": files, "dir": d}
            if kind == "postgres":
                s = run_sink(name, kind, '{conninfo: "%s", table: %s}' % (pg.conninfo(), name),
                             plugins)
                return s, {}
            if kind == "clickhouse":
                s = run_sink(name, kind, '{url: "%s", table: %s}' % (ch.url(), name), plugins)
                return s, {}
            s = run_sink(name, kind, '{url: "http://127.0.0.1:%d/save/%s"}' % (http_port, name),
                         plugins)
            return s, {}

        def baselines(kind, name):
            """Loads the rows sink `name` wrote with the target's own tools; drops the sink's
            output. [(label, (seconds, cpu, rss, server cpu), input bytes)]."""
            out = []
            if kind == "file":
                d = os.path.join(tmp, name)
                files = sorted(os.path.join(d, f) for f in os.listdir(d))
                dst = os.path.join(tmp, "cat.out")
                size = sum(os.path.getsize(f) for f in files)
                with open(dst, "wb") as fo:
                    b = timed(["cat"] + files, stdout=fo)
                b2 = timed(["sync", dst])
                out.append(("cat + sync", (b[0] + b2[0], b[1] + b2[1], max(b[2], b2[2]), 0.0),
                            size))
                os.unlink(dst)
                shutil.rmtree(d)
            elif kind == "postgres":
                csv = os.path.join(tmp, "rows.copy")
                pg.sql("\\copy (select topic, \"partition\", \"offset\", ts, key, headers, "
                       "value from %s) to '%s'" % (name, csv))
                pg.sql("drop table %s" % name)
                # The copy's table has the sink's shape, primary key included (tmpl_, made
                # from the sink's table before anything was dropped).
                pg.sql("create table copy_%s (like tmpl_%s including all)" % (name, name))
                b = run_base(kind, ["sh", sinklib.PGTEST, "psql", pg.dir,
                                    "\\copy copy_%s from '%s'" % (name, csv)])
                got = int(pg.sql("select count(*) from copy_%s" % name))
                if got != a.records:
                    raise RuntimeError("psql \\copy loaded %d rows" % got)
                pg.sql("drop table copy_%s; drop table tmpl_%s" % (name, name))
                out.append(("psql \\copy", b, os.path.getsize(csv)))
                os.unlink(csv)
            elif kind == "clickhouse":
                for fmt in ("RowBinary", "JSONEachRow"):
                    rows = os.path.join(tmp, "rows." + fmt)
                    req = urllib.request.Request(
                        ch.url() + "/", data=("SELECT topic, partition, offset, timestamp, key, "
                                              "headers, value FROM %s FORMAT %s"
                                              % (name, fmt)).encode())
                    with open(rows, "wb") as fo:
                        shutil.copyfileobj(urllib.request.urlopen(req, timeout=600), fo)
                ch.sql("CREATE TABLE tmpl_%s AS %s" % (name, name))
                ch.sql("DROP TABLE %s" % name)
                for fmt in ("RowBinary", "JSONEachRow"):
                    rows = os.path.join(tmp, "rows." + fmt)
                    ch.sql("CREATE TABLE copy_%s AS tmpl_%s" % (name, name))
                    with open(rows, "rb") as fi:
                        b = run_base(kind, [
                            "clickhouse-client", "--host", "127.0.0.1", "--port",
                            str(ch.ports[1]), "--query",
                            "INSERT INTO copy_%s (topic, partition, offset, timestamp, key, "
                            "headers, value) FORMAT %s" % (name, fmt)], stdin=fi)
                    got = int(ch.sql("SELECT count() FROM copy_%s" % name))
                    if got != a.records:
                        raise RuntimeError("clickhouse-client inserted %d rows" % got)
                    ch.sql("DROP TABLE copy_%s" % name)
                    out.append(("clickhouse-client " + fmt, b, os.path.getsize(rows)))
                    os.unlink(rows)
                ch.sql("DROP TABLE tmpl_%s" % name)
            else:
                body = os.path.join(tmp, "body.jsonl")
                urllib.request.urlopen(urllib.request.Request(
                    "http://127.0.0.1:%d/dump/%s" % (http_port, name), data=body.encode()),
                    timeout=600).read()
                # To /save/ as well: the receiver keeps curl's body as it kept the sink's.
                b = run_base(kind, ["curl", "-sS", "--fail", "-H",
                                    "Content-Type: application/x-ndjson", "--data-binary",
                                    "@" + body, "http://127.0.0.1:%d/save/c%s" % (http_port,
                                                                                   name)])
                urllib.request.urlopen(urllib.request.Request(
                    "http://127.0.0.1:%d/dump/c%s" % (http_port, name),
                    data=os.devnull.encode()), timeout=600).read()
                out.append(("curl", b, os.path.getsize(body)))
                os.unlink(body)
            return out

        def discard(kind, name):
            """Drops what a sink wrote without loading it anywhere (the earlier build's pass,
            whose rows the baselines do not need twice)."""
            if kind == "file":
                shutil.rmtree(os.path.join(tmp, name))
            elif kind == "postgres":
                pg.sql("drop table %s" % name)
            elif kind == "clickhouse":
                ch.sql("DROP TABLE %s" % name)
            else:
                urllib.request.urlopen(urllib.request.Request(
                    "http://127.0.0.1:%d/dump/%s" % (http_port, name),
                    data=os.devnull.encode()), timeout=600).read()

        # res[kind][label] = [(seconds, cpu, rss, server cpu)], one per run; order[kind] the
        # labels in the order printed; size[kind] the bytes of the rows (the first baseline's
        # input), for MB/s.
        res = {k: {} for k in kinds}
        order = {k: [] for k in kinds}
        size = {}
        for run in range(a.runs):
            for kind in kinds:
                # Alternate which build's sink runs first, so neither always meets a
                # target the other has just warmed (or left merging).
                passes = [("sink", None)]
                if a.before:
                    passes.append(("sink before", a.before))
                    if run % 2 == 1:
                        passes.reverse()
                figures = []
                for label, plugins in passes:
                    name = "b%s%d%s" % (kind[:2], run, "o" if plugins else "")
                    s, _ = sink_pass(kind, name, plugins)
                    if kind == "postgres":
                        # The baseline's table copies the sink's shape (before it is dropped).
                        pg.sql("create table tmpl_%s (like %s including all)" % (name, name))
                    figures.append((label, s, name))
                for label, s, name in figures:
                    res[kind].setdefault(label, []).append(
                        (s[0], s[1], s[2], s[4]))
                    if label not in order[kind]:
                        order[kind].append(label)
                    extra = s[3]
                    print("run %d %-10s %-12s %7.2f s %8.0f rec/s cpu %5.2f s rss %4.0f MiB "
                          "server cpu %6.2f s%s" % (
                              run + 1, kind, label, s[0], a.records / s[0], s[1], s[2], s[4],
                              "  (%s)" % ", ".join("%s %s" % kv for kv in sorted(extra.items()))
                              if extra else ""), flush=True)
                for label, s, name in figures:
                    if label != "sink":
                        if kind == "postgres":
                            pg.sql("drop table tmpl_%s" % name)
                        discard(kind, name)
                name = [f[2] for f in figures if f[0] == "sink"][0]
                for label, b, nbytes in baselines(kind, name):
                    size.setdefault(kind, nbytes)
                    res[kind].setdefault(label, []).append(b)
                    if label not in order[kind]:
                        order[kind].append(label)
                    print("run %d %-10s %-28s %7.2f s %8.0f rec/s cpu %5.2f s rss %4.0f MiB "
                          "server cpu %6.2f s" % (run + 1, kind, label, b[0], a.records / b[0],
                                                  b[1], b[2], b[3]), flush=True)
        try:
            load = open("/proc/loadavg").read().split()[:3]
        except OSError:
            load = ["?"]
        print("\n%d records, %d partitions, batch %d, %d workers, %d runs; %d CPUs, load %s"
              % (a.records, a.partitions, a.max_records, a.workers, a.runs, os.cpu_count(),
                 " ".join(load)))
        print("medians; 'of X' is the median of each run's records/s over X's in that run")
        for kind in kinds:
            bases = [l for l in order[kind] if not l.startswith("sink")]
            print("\n  %-30s %10s %7s %9s %8s %12s %s" % (
                kind, "records/s", "MB/s", "cpu s", "rss MiB", "server cpu s",
                "  ".join("%14s" % ("of " + b.split()[-1] if kind == "clickhouse" else "of " + b)
                          for b in bases)))
            for label in order[kind]:
                rows = res[kind][label]
                med = [statistics.median(x) for x in zip(*rows)]
                ratios = []
                for base in bases:
                    r = statistics.median(y[0] / x[0] for x, y in zip(rows, res[kind][base]))
                    ratios.append("%13.0f%%" % (100.0 * r))
                print("  %-30s %10.0f %7.1f %9.2f %8.0f %12.2f %s" % (
                    label, a.records / med[0], size[kind] / med[0] / 1e6, med[1], med[2],
                    med[3], "  ".join(ratios)))
    finally:
        if c is not None and c.proc is not None:
            c.stop("TERM")
        if pg:
            pg.kill()
        if ch:
            ch.stop()
        if recv:
            recv.kill()
            recv.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        if c is not None:
            shutil.rmtree(c.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
