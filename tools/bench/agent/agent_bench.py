#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-agent: ships N lines of a realistic access log through an
agent into a local collector and reports lines/s, MB/s, the agent's CPU
seconds per million lines and its peak RSS (medians of --runs runs).

    tributary-bench-agent [--lines 1000000] [--runs 5] [--parse none,regex,json,logfmt]
                          [--multiline] [--compression snappy] [--max-inflight SIZE]
                          [--baseline OLD-AGENT] [--other 'CMD'] [--other-name NAME]

--parse names the parse step of each mode to run, one row each (the same
session, so the rows compare): none, regex (the nginx pattern below, its
time read with the common log format), json (the same fields as one JSON
object per line, an RFC 3339 time) or logfmt (the same as key=value
pairs). --regex is --parse regex. --multiline adds two indented
continuation lines to every record and a multiline start pattern to the
input, so each record is three lines (--lines counts records).

Each run: a fresh collector (--listen 127.0.0.1:0) and a fresh log file of
--lines lines (~200 bytes each, written before the agent starts), then the
agent is started and the clock runs until the topic's high watermark
reaches N; the agent is stopped with SIGTERM and its rusage (user+system
CPU of all its threads) is read with wait4(); peak RSS is VmHWM, read from
/proc until the stop. Writing the file and starting the collector are not
timed; the time includes the agent's start-up. Run it on an idle machine.

--baseline runs a second tributary-agent binary (say, a build from before a
change) with the same configuration; its runs alternate with those of
--agent, mode by mode, and its figures print on rows labelled baseline.

--other runs the same workload through another agent for comparison: CMD
is a shell command with {file}, {bootstrap}, {topic}, {tmp}, {conf} and
{parse} (the mode) replaced; --other-config names a config template whose copy, filled in the
same way, is {conf} (tools/bench/agent/rsyslog.conf.in: rsyslog imfile ->
omkafka). It must ship each line (each record) of {file} as one record to
{topic}, parsed as {parse} says. Its figures print on rows of their own. Needs python3-confluent-kafka (watermarks).
"""
import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("TRIB_BIN_DIR", HERE)
COLLECTOR = os.path.join(BIN, "tributary-collector")
AGENT = os.path.join(BIN, "tributary-agent")
PATTERN = (r'^(?<client>\S+) \S+ \S+ \[(?<time>[^\]]+)\] "(?<method>\S+) (?<path>\S+)[^"]*" '
           r'(?<status>\d{3}) (?<bytes>\d+)')


def access_line(i):
    return ('10.%d.%d.%d - - [26/Nov/2026:10:%02d:%02d +0000] "GET /api/v1/items/%08d?page=%d '
            'HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0" seq=%d\n'
            % (i % 7, (i // 7) % 256, i % 251, (i // 60) % 60, i % 60, i, i % 13,
               (200, 200, 200, 304, 404, 500)[i % 6], 100 + i % 9000, i))


def json_line(i):
    return ('{"time":"2026-11-26T10:%02d:%02dZ","client":"10.%d.%d.%d","method":"GET",'
            '"path":"/api/v1/items/%08d?page=%d","status":%d,"bytes":%d,'
            '"ua":"Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0","seq":%d}\n'
            % ((i // 60) % 60, i % 60, i % 7, (i // 7) % 256, i % 251, i, i % 13,
               (200, 200, 200, 304, 404, 500)[i % 6], 100 + i % 9000, i))


def logfmt_line(i):
    return ('time=2026-11-26T10:%02d:%02dZ client=10.%d.%d.%d method=GET '
            'path=/api/v1/items/%08d?page=%d status=%d bytes=%d '
            'ua="Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0" seq=%d\n'
            % ((i // 60) % 60, i % 60, i % 7, (i // 7) % 256, i % 251, i, i % 13,
               (200, 200, 200, 304, 404, 500)[i % 6], 100 + i % 9000, i))


LINES = {"none": access_line, "regex": access_line, "json": json_line, "logfmt": logfmt_line}
MODES = ("none", "regex", "json", "logfmt")


def record(mode, multiline):
    line = LINES[mode]
    if not multiline:
        return line
    return lambda i: (line(i) + "\tat com.example.Handler.run(Handler.java:%d)\n"
                      "\tat com.example.Server.loop(Server.java:%d)\n" % (i % 977, i % 61))


def start_collector(tmp):
    ready = os.path.join(tmp, "ready")
    log = open(os.path.join(tmp, "collector.log"), "wb")
    p = subprocess.Popen([COLLECTOR, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                          "--data-dir", os.path.join(tmp, "data"), "--ready-file", ready],
                         stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(ready):
            words = dict(l.split() for l in open(ready).read().splitlines() if l.strip())
            if "kafka" in words and "metrics" in words:
                return p, words["kafka"]
        time.sleep(0.05)
    p.kill()
    sys.exit("the collector did not start")


class Watermark:
    """The topic's summed high watermarks, through one long-lived consumer."""

    def __init__(self, bootstrap):
        from confluent_kafka import Consumer
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench",
                           "enable.auto.commit": False})

    def close(self):
        self.c.close()


def watermark(w, topic):
    from confluent_kafka import TopicPartition
    c = w.c
    try:
        md = c.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return 0
        total = 0
        for p in t.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
            total += hi
        return total
    except Exception:
        return 0


def vm_hwm_kib(pid):
    """Peak RSS since exec (VmHWM); ru_maxrss would count the forking Python's pages."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def await_records(p, w, topic, n, t0, timeout, interval=0.2):
    """Polls until the topic holds n records (or p exits, or timeout passes
    since t0), then stops p with SIGTERM and reaps it. Returns (seconds
    since t0, records, p's peak RSS in KiB, p's CPU seconds)."""
    got = 0
    hwm = 0
    while time.monotonic() - t0 < timeout:
        if p.poll() is not None:
            break
        hwm = max(hwm, vm_hwm_kib(p.pid))
        got = watermark(w, topic)
        if got >= n:
            break
        time.sleep(interval)
    elapsed = time.monotonic() - t0
    if got < n:
        got = watermark(w, topic)
    w.close()
    hwm = max(hwm, vm_hwm_kib(p.pid))
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = status
    return elapsed, got, hwm, ru.ru_utime + ru.ru_stime


def run_once(args, cmd_for, label):
    tmp = tempfile.mkdtemp(prefix="agent-bench.")
    coll = None
    try:
        os.makedirs(os.path.join(tmp, "data"))
        path = os.path.join(tmp, "access.log")
        line = record(args.mode, args.multiline)
        with open(path, "w") as f:
            for base in range(0, args.lines, 100000):
                f.write("".join(line(i) for i in range(base, min(args.lines, base + 100000))))
        size = os.path.getsize(path)
        coll, bootstrap = start_collector(tmp)
        topic = "bench"
        argv = cmd_for(tmp, path, bootstrap, topic)
        out = open(os.path.join(tmp, label + ".log"), "wb")
        w = Watermark(bootstrap)
        t0 = time.monotonic()
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", "exec " + argv]
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        elapsed, got, hwm, cpu = await_records(p, w, topic, args.lines, t0, args.timeout)
        if got < args.lines:
            print("  %s: only %d of %d lines arrived (log: %s)" % (label, got, args.lines,
                                                                  out.name), file=sys.stderr)
            args.keep = True
        return {"secs": elapsed, "lines_s": args.lines / elapsed, "mb_s": size / elapsed / 1e6,
                "cpu_per_m": cpu / (args.lines / 1e6), "lines_per_cpu_s": args.lines / cpu,
                "rss_mib": hwm / 1024.0, "bytes": size}
    finally:
        if coll is not None:
            coll.send_signal(signal.SIGTERM)
            coll.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("  kept %s" % tmp, file=sys.stderr)


def our_agent(args, binary):
    def cmd(tmp, path, bootstrap, topic):
        conf = os.path.join(tmp, "agent.yaml")
        with open(conf, "w") as f:
            f.write("agent: {id: bench, state_dir: %s/state}\n" % tmp)
            f.write("output:\n  brokers: [%s]\n  compression: %s\n" % (bootstrap,
                                                                      args.compression))
            f.write("  headers: %s\n" % ("false" if args.no_headers else "true"))
            if args.no_event_id:
                f.write("  event_id: false\n")
            if args.max_inflight:
                f.write("  max_inflight_bytes: %s\n" % args.max_inflight)
            if args.option:
                f.write("  options: {%s}\n" % ", ".join(
                    "%s: \"%s\"" % tuple(o.split("=", 1)) for o in args.option))
            f.write("pipelines:\n  - name: bench\n    inputs:\n      - type: tail\n"
                    "        paths: [\"%s\"]\n" % path)
            if args.multiline:
                f.write("        multiline: {start: '^\\S'}\n")
            if args.mode == "regex":
                f.write("    parse:\n      - type: regex\n        pattern: '%s'\n"
                        "        time_field: time\n        time_format: '%%d/%%b/%%Y:%%H:%%M:%%S %%z'\n"
                        % PATTERN)
            elif args.mode in ("json", "logfmt"):
                f.write("    parse:\n      - type: %s\n        time_field: time\n"
                        "        time_format: rfc3339\n" % args.mode)
            f.write("    topic: %s\n    key: \"\"\n" % topic)
        return [binary, "--config", conf]
    return cmd


def other_agent(args):
    def cmd(tmp, path, bootstrap, topic):
        conf = os.path.join(tmp, "other.conf")
        if args.other_config:
            with open(args.other_config) as f:
                text = f.read()
            for k, v in (("{file}", path), ("{bootstrap}", bootstrap), ("{topic}", topic),
                         ("{tmp}", tmp), ("{parse}", args.mode)):
                text = text.replace(k, v)
            with open(conf, "w") as f:
                f.write(text)
        return args.other.format(file=shlex.quote(path), bootstrap=bootstrap, topic=topic,
                                 tmp=shlex.quote(tmp), conf=shlex.quote(conf), parse=args.mode)
    return cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--parse", default=None,
                    help="parse modes to run, comma-separated: none, regex, json, logfmt "
                    "(default none)")
    ap.add_argument("--regex", action="store_true", help="the same as --parse regex")
    ap.add_argument("--multiline", action="store_true",
                    help="three-line records joined by a multiline start pattern")
    ap.add_argument("--compression", default="snappy")
    ap.add_argument("--no-headers", action="store_true", help="output.headers: false")
    ap.add_argument("--no-event-id", action="store_true", help="output.event_id: false")
    ap.add_argument("--option", action="append", default=[],
                    help="a producer option for output.options, KEY=VALUE (repeatable)")
    ap.add_argument("--max-inflight", help="output.max_inflight_bytes of tributary-agent "
                    "(e.g. 4MiB; default: the agent's)")
    ap.add_argument("--agent", default=AGENT)
    ap.add_argument("--baseline", help="another tributary-agent binary (an older build) run "
                    "with the same config, its runs taking turns with --agent's")
    ap.add_argument("--other", help="another agent's command line ({file} {bootstrap} {topic} {tmp})")
    ap.add_argument("--other-name", default="other")
    ap.add_argument("--other-config", help="a config template for --other: {file} {bootstrap} "
                    "{topic} {tmp} are replaced, the result is {conf} (see rsyslog.conf.in)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    args = ap.parse_args()
    modes = (args.parse or ("regex" if args.regex else "none")).split(",")
    for m in modes:
        if m not in MODES:
            ap.error("--parse: %r is not one of %s" % (m, ", ".join(MODES)))
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print("%d %s (~200 B), %d runs, parse %s, compression %s, headers %s%s; nproc %d, %s"
          % (args.lines, "three-line records" if args.multiline else "lines", args.runs,
             ",".join(modes), args.compression,
             ("off" if args.no_headers else "on") + (", no event id" if args.no_event_id else ""),
             "".join(", " + o for o in args.option) +
             (", max_inflight_bytes " + args.max_inflight if args.max_inflight else ""),
             os.cpu_count(), cpu))
    agents = [("tributary-agent", our_agent(args, args.agent))]
    if args.baseline:
        agents.insert(0, ("baseline", our_agent(args, args.baseline)))
    print("%-24s %10s %8s %14s %16s %10s" % ("agent (parse)", "lines/s", "MB/s",
                                            "CPU s/1M lines", "lines/CPU-s", "peak RSS"))
    groups = [(m, agents) for m in modes]
    if args.other:
        groups += [(m, [(args.other_name, other_agent(args))]) for m in modes]
    for mode, group in groups:
        args.mode = mode
        # the agents of a mode take turns run by run, so a change in the
        # machine's load falls on each of them alike
        res = {agent: [] for agent, _ in group}
        for _ in range(args.runs):
            for agent, cmd in group:
                res[agent].append(run_once(args, cmd, agent))
        for agent, _ in group:
            rs = res[agent]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            print("%-24s %10.0f %8.1f %14.3f %16.0f %8.1f MiB   (medians; runs: %s lines/s, "
                  "%s MiB)"
                  % ("%s (%s)" % (agent, mode), med["lines_s"], med["mb_s"], med["cpu_per_m"],
                     med["lines_per_cpu_s"], med["rss_mib"],
                     ", ".join("%.0f" % r["lines_s"] for r in rs),
                     ", ".join("%.1f" % r["rss_mib"] for r in rs)))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
