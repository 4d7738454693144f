#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-sinks: each sink type beside its target's own bulk loader,
measured alternately in the same run on the same target.

    tributary-bench-sinks [--records N] [--partitions P] [--max-records B]
                          [--workers W] [--runs R] [--sinks file,postgres,...]
                          [--repo DIR] [--bin DIR]

1. Throwaway targets on ephemeral 127.0.0.1 ports, started like the tests
   start them (tests/integration/0599_sinklib.py): PostgreSQL 15 with its
   default durability (fsync and synchronous_commit on), Debian's
   clickhouse-server, and an HTTP receiver (a separate Python process that
   reads and drops each body, keep-alive).
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
   - then the baseline loads the same rows the sink wrote, in the same
     format, into the same target:
       file        cat of the sink's files into one file, then sync of it
       postgres    psql \\copy FROM of the table's rows (COPY text) into an
                   empty table of the same shape, primary key included
       clickhouse  clickhouse-client INSERT ... FORMAT JSONEachRow of the
                   table's rows into an empty table of the same engine
       http        curl --data-binary of the bodies the sink sent, as one
                   body, to the same receiver
     Its CPU-seconds and peak RSS are the client process's (GNU time).
   Server-side CPU (PostgreSQL backends, clickhouse-server) is in neither.
Medians over R runs are printed, and the median of each run's sink/baseline
ratio (sink and baseline ran back to back, under the same load); figures are
only comparable within one run (the machine's load changes between runs).
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
import http.server, os, sys, threading
save = sys.argv[1]
lock = threading.Lock()
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        left = int(self.headers["Content-Length"])
        out = None
        if self.path.startswith("/save/"):
            with lock:
                n[0] += 1
                name = os.path.join(save, "%s.%09d" % (self.path.split("/")[2], n[0]))
            out = open(name, "wb")
        while left > 0:
            b = self.rfile.read(min(left, 1 << 20))
            if not b:
                break
            left -= len(b)
            if out:
                out.write(b)
        if out:
            out.close()
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
    extra = dict(re.findall(r'^tributary_sink_plugin_total\{sink="%s",name="postgres_(batches_\w+|'
                            r'direct_conflicts)"\} (\d+)' % name, body, re.M))
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

        def run_sink(name, kind, options):
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
            return dt, cpu, rss, extra

        res = {k: {"sink": [], "base": []} for k in kinds}
        for run in range(a.runs):
            for kind in kinds:
                name = "b%s%d" % (kind[:2], run)
                extra = {}
                if kind == "file":
                    d = os.path.join(tmp, name)
                    s = run_sink(name, kind, '{path: "%s"}' % d)
                    files = sorted(os.path.join(d, f) for f in os.listdir(d))
                    out = os.path.join(tmp, "cat.out")
                    size = sum(os.path.getsize(f) for f in files)
                    with open(out, "wb") as fo:
                        b = timed(["cat"] + files, stdout=fo)
                    b2 = timed(["sync", out])
                    b = (b[0] + b2[0], b[1] + b2[1], max(b[2], b2[2]))
                    os.unlink(out)
                    shutil.rmtree(d)
                    base = "cat + sync"
                elif kind == "postgres":
                    s = run_sink(name, kind, '{conninfo: "%s", table: %s}' % (pg.conninfo(), name))
                    extra = s[3]
                    csv = os.path.join(tmp, "rows.copy")
                    pg.sql("\\copy (select topic, \"partition\", \"offset\", ts, key, headers, "
                           "value from %s) to '%s'" % (name, csv))
                    size = os.path.getsize(csv)
                    pg.sql("create table copy_%s (like %s including all)" % (name, name))
                    b = timed(["sh", sinklib.PGTEST, "psql", pg.dir,
                               "\\copy copy_%s from '%s'" % (name, csv)])
                    got = int(pg.sql("select count(*) from copy_%s" % name))
                    if got != a.records:
                        raise RuntimeError("psql \\copy loaded %d rows" % got)
                    pg.sql("drop table %s; drop table copy_%s" % (name, name))
                    os.unlink(csv)
                    base = "psql \\copy"
                elif kind == "clickhouse":
                    s = run_sink(name, kind, '{url: "%s", table: %s}' % (ch.url(), name))
                    rows = os.path.join(tmp, "rows.jsonl")
                    req = urllib.request.Request(
                        ch.url() + "/", data=("SELECT topic, partition, offset, timestamp, key, "
                                              "headers, value FROM %s FORMAT JSONEachRow"
                                              % name).encode())
                    with open(rows, "wb") as fo:
                        shutil.copyfileobj(urllib.request.urlopen(req, timeout=600), fo)
                    size = os.path.getsize(rows)
                    ch.sql("CREATE TABLE copy_%s AS %s" % (name, name))
                    with open(rows, "rb") as fi:
                        b = timed(["clickhouse-client", "--host", "127.0.0.1", "--port",
                                   str(ch.ports[1]), "--query",
                                   "INSERT INTO copy_%s FORMAT JSONEachRow" % name], stdin=fi)
                    got = int(ch.sql("SELECT count() FROM copy_%s" % name))
                    if got != a.records:
                        raise RuntimeError("clickhouse-client inserted %d rows" % got)
                    ch.sql("DROP TABLE %s" % name)
                    ch.sql("DROP TABLE copy_%s" % name)
                    os.unlink(rows)
                    base = "clickhouse-client"
                else:
                    s = run_sink(name, kind, '{url: "http://127.0.0.1:%d/save/%s"}'
                                 % (http_port, name))
                    parts = sorted(f for f in os.listdir(save) if f.startswith(name + "."))
                    body = os.path.join(tmp, "body.jsonl")
                    with open(body, "wb") as fo:
                        for f in parts:
                            with open(os.path.join(save, f), "rb") as fi:
                                shutil.copyfileobj(fi, fo)
                            os.unlink(os.path.join(save, f))
                    size = os.path.getsize(body)
                    b = timed(["curl", "-sS", "--fail", "-H", "Content-Type: application/x-ndjson",
                               "--data-binary", "@" + body,
                               "http://127.0.0.1:%d/drop" % http_port])
                    os.unlink(body)
                    base = "curl"
                res[kind]["sink"].append((a.records / s[0], size / s[0] / 1e6, s[1], s[2]))
                res[kind]["base"].append((a.records / b[0], size / b[0] / 1e6, b[1], b[2]))
                res[kind]["label"] = base
                res[kind]["size"] = size
                print("run %d %-10s sink %7.2f s %8.0f rec/s %6.1f MB/s cpu %5.2f s rss %4.0f MiB"
                      " | %-17s %6.2f s %8.0f rec/s cpu %5.2f s%s" % (
                          run + 1, kind, s[0], a.records / s[0], size / s[0] / 1e6, s[1], s[2],
                          base, b[0], a.records / b[0], b[1],
                          "  (%s)" % ", ".join("%s %s" % kv for kv in sorted(extra.items()))
                          if extra else ""), flush=True)
        try:
            load = open("/proc/loadavg").read().split()[:3]
        except OSError:
            load = ["?"]
        print("\n%d records, %d partitions, batch %d, %d workers, %d runs; %d CPUs, load %s"
              % (a.records, a.partitions, a.max_records, a.workers, a.runs, os.cpu_count(),
                 " ".join(load)))
        print("medians:  %-10s %10s %7s %9s %8s   %-17s %10s %7s %9s %8s %6s %8s" % (
            "sink", "records/s", "MB/s", "cpu s", "rss MiB", "baseline", "records/s", "MB/s",
            "cpu s", "rss MiB", "sink %", "per run"))
        for kind in kinds:
            sm = [statistics.median(x) for x in zip(*res[kind]["sink"])]
            bm = [statistics.median(x) for x in zip(*res[kind]["base"])]
            # Also the median of each run's own ratio: sink and baseline ran back to back.
            ratio = statistics.median(x[0] / y[0] for x, y in zip(res[kind]["sink"],
                                                                  res[kind]["base"]))
            print("          %-10s %10.0f %7.1f %9.2f %8.0f   %-17s %10.0f %7.1f %9.2f %8.0f %5.0f%%"
                  " %7.0f%%" % (kind, sm[0], sm[1], sm[2], sm[3], res[kind]["label"], bm[0],
                                bm[1], bm[2], bm[3], 100.0 * sm[0] / bm[0], 100.0 * ratio))
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
