#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-syslog: sends N RFC 5424 messages (~100 bytes, octet
counted) over one TCP connection to an agent's syslog input, which parses
them, writes them to its disk buffer and ships them to a local collector;
reports messages/s, MB/s, the agent's CPU seconds per million messages,
messages per CPU-second and its peak RSS (medians of --runs runs).

    tributary-bench-syslog [--messages 1000000] [--runs 3] [--compression snappy]
                           [--other 'CMD' --other-config FILE --other-name NAME]

Each run: a fresh collector and agent; the messages are built before the
clock starts; the clock runs from the first byte sent until the topic's
high watermark reaches N (every message parsed, buffered, produced and
acknowledged). The agent is then stopped with SIGTERM and its rusage
(user+system CPU of all its threads) read with wait4(); peak RSS is VmHWM.

--other runs the same workload through another receiver: CMD is a shell
command with {port}, {bootstrap}, {topic}, {tmp} and {conf} replaced;
--other-config is a config template filled in the same way
(tools/bench/syslog/rsyslog.conf.in: rsyslog imtcp -> omkafka). Needs
python3-confluent-kafka (watermarks).
"""
import argparse
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.machinery import SourceFileLoader

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("TRIB_BIN_DIR", HERE)
AGENT = os.path.join(BIN, "tributary-agent")


def load_agent_bench():
    """The collector, watermark and RSS helpers of tributary-bench-agent."""
    for path in (os.path.join(HERE, "tributary-bench-agent"),
                 os.path.join(HERE, "..", "agent", "agent_bench.py")):
        if os.path.exists(path):
            loader = SourceFileLoader("agent_bench", path)
            spec = importlib.util.spec_from_loader("agent_bench", loader)
            mod = importlib.util.module_from_spec(spec)
            loader.exec_module(mod)
            return mod
    sys.exit("tributary-bench-agent not found beside " + HERE)


ab = load_agent_bench()


def payload(n):
    out = []
    for i in range(n):
        msg = ("<134>1 2026-11-26T10:%02d:%02d.%03dZ web-%02d nginx %d - - GET /api/v1/items/%08d "
               "200 %d seq=%d" % ((i // 60000) % 60, (i // 1000) % 60, i % 1000, i % 50,
                                  1000 + i % 30000, i, 100 + i % 9000, i)).encode()
        out.append(b"%d %s" % (len(msg), msg))
    return b"".join(out)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("the receiver exited with status %s" % proc.returncode)
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            time.sleep(0.05)
    sys.exit("the receiver did not listen on %d" % port)


def run_once(args, data, cmd_for, label):
    tmp = tempfile.mkdtemp(prefix="syslog-bench.")
    coll = None
    try:
        os.makedirs(os.path.join(tmp, "data"))
        coll, bootstrap = ab.start_collector(tmp)
        topic = "bench"
        port = free_port()
        argv = cmd_for(tmp, port, bootstrap, topic)
        out = open(os.path.join(tmp, label + ".log"), "wb")
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", "exec " + argv]
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        s = connect(port, p)
        w = ab.Watermark(bootstrap)
        t0 = time.monotonic()
        view = memoryview(data)
        for off in range(0, len(data), 1 << 20):
            s.sendall(view[off:off + (1 << 20)])
        s.close()
        elapsed, got, hwm, cpu = ab.await_records(p, w, topic, args.messages, t0, args.timeout,
                                                  interval=0.1)
        if got < args.messages:
            print("  %s: only %d of %d messages arrived (log: %s)"
                  % (label, got, args.messages, out.name), file=sys.stderr)
            args.keep = True
        return {"secs": elapsed, "msgs_s": args.messages / elapsed,
                "mb_s": len(data) / elapsed / 1e6, "cpu_per_m": cpu / (args.messages / 1e6),
                "msgs_per_cpu_s": args.messages / cpu, "rss_mib": hwm / 1024.0}
    finally:
        if coll is not None:
            coll.send_signal(signal.SIGTERM)
            coll.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("  kept %s" % tmp, file=sys.stderr)


def our_agent(args):
    def cmd(tmp, port, bootstrap, topic):
        conf = os.path.join(tmp, "agent.yaml")
        with open(conf, "w") as f:
            f.write("agent: {id: bench, state_dir: %s/state}\n" % tmp)
            f.write("output: {brokers: [%s], compression: %s}\n" % (bootstrap, args.compression))
            f.write("pipelines:\n  - name: bench\n    inputs:\n"
                    "      - {type: syslog, mode: tcp, address: \"127.0.0.1:%d\"}\n"
                    "    topic: %s\n    key: \"\"\n" % (port, topic))
        return [args.agent, "--config", conf]
    return cmd


def other_agent(args):
    def cmd(tmp, port, bootstrap, topic):
        conf = os.path.join(tmp, "other.conf")
        if args.other_config:
            with open(args.other_config) as f:
                text = f.read()
            for k, v in (("{port}", str(port)), ("{bootstrap}", bootstrap), ("{topic}", topic),
                         ("{tmp}", tmp)):
                text = text.replace(k, v)
            with open(conf, "w") as f:
                f.write(text)
        return args.other.format(port=port, bootstrap=bootstrap, topic=topic,
                                 tmp=shlex.quote(tmp), conf=shlex.quote(conf))
    return cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compression", default="snappy")
    ap.add_argument("--agent", default=AGENT)
    ap.add_argument("--other", help="another receiver's command ({port} {bootstrap} {topic} "
                    "{tmp} {conf})")
    ap.add_argument("--other-name", default="other")
    ap.add_argument("--other-config", help="a config template for --other (rsyslog.conf.in)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    args = ap.parse_args()
    data = payload(args.messages)
    print("%d RFC 5424 messages (%.0f B each, octet counted, one TCP connection), %d runs, "
          "compression %s; nproc %d"
          % (args.messages, len(data) / args.messages, args.runs, args.compression,
             os.cpu_count()))
    rows = [("tributary-agent", our_agent(args))]
    if args.other:
        rows.append((args.other_name, other_agent(args)))
    print("%-18s %10s %8s %15s %14s %10s" % ("receiver", "msgs/s", "MB/s", "CPU s/1M msgs",
                                            "msgs/CPU-s", "peak RSS"))
    for name, cmd in rows:
        res = [run_once(args, data, cmd, name) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in res) for k in res[0]}
        print("%-18s %10.0f %8.1f %15.3f %14.0f %8.1f MiB   (medians; runs: %s msgs/s)"
              % (name, med["msgs_s"], med["mb_s"], med["cpu_per_m"], med["msgs_per_cpu_s"],
                 med["rss_mib"], ", ".join("%.0f" % r["msgs_s"] for r in res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
