# SPDX-License-Identifier: Apache-2.0
"""Helpers for the agent's integration tests (0300-0398), beside lib/.

Not a test itself (the CMake glob takes NNNN-*.py only). Import with
importlib: `agentlib = importlib.import_module("0399_agentlib")`.

    a = agentlib.Agent(tmp, bootstrap, pipelines_yaml, agent_extra="...")
    with agentlib.guard(a):          # logs printed on failure, checked after
        a.start(); ...; a.stop("TERM")
    values = agentlib.consume(bootstrap, "topic")  # kcat -C, JSON values
    a.check_logs()                   # sanitizer reports fail the test
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import BIN_DIR, TestFailure, log, sanitizer_report  # noqa: E402

AGENT = os.path.join(BIN_DIR, "tributary-agent")
SEQ = re.compile(r"seq=(\d+)")


def wait_for(cond, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise TestFailure("timed out after %ss waiting for %s" % (timeout, what))


class Agent:
    def __init__(self, tmp, bootstrap, pipelines, agent_extra="", output_extra="",
                 name="agent"):
        self.tmp = tmp
        self.name = name
        self.state = os.path.join(tmp, name + "-state")
        self.conf = os.path.join(tmp, name + ".yaml")
        self.metrics_file = os.path.join(tmp, name + ".prom")
        self.bootstrap = bootstrap
        self.pipelines = pipelines
        self.agent_extra = agent_extra
        self.output_extra = output_extra
        self.proc = None
        self.runs = 0
        self.env = None  # None: the test's own environment
        self.write_config()

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write("agent:\n  id: %s\n  state_dir: %s\n  metrics_file: %s\n"
                    "  checkpoint_interval: 100ms\n%s"
                    % (self.name, self.state, self.metrics_file, self.agent_extra))
            f.write("output:\n  brokers: [%s]\n%s" % (self.bootstrap, self.output_extra))
            f.write("pipelines:\n%s" % self.pipelines)

    def log_path(self, run=None):
        return os.path.join(self.tmp, "%s.%d.log" % (self.name, run or self.runs))

    def start(self, *args):
        self.runs += 1
        self.log = open(self.log_path(), "wb")
        self.proc = subprocess.Popen([AGENT, "--config", self.conf] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("the agent did not exit within %ss" % timeout)
        self.proc = None
        self.log.close()
        return rc

    def stop(self, sig="TERM", timeout=60):
        if self.proc is None:
            return None
        self.proc.send_signal(getattr(signal, "SIG" + sig))
        rc = self.wait(timeout)
        if sig == "TERM" and rc != 0:
            self.dump()
            raise TestFailure("SIGTERM ended the agent with status %d, not 0" % rc)
        if sig == "KILL" and rc != -9:
            raise TestFailure("SIGKILL ended the agent with status %d" % rc)
        return rc

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def metrics(self):
        out = {}
        try:
            with open(self.metrics_file) as f:
                for line in f:
                    if line.startswith("#") or not line.strip():
                        continue
                    k, v = line.rsplit(" ", 1)
                    out[k] = float(v)
        except OSError:
            pass
        return out

    def checkpoints(self):
        rows = []
        try:
            with open(os.path.join(self.state, "checkpoints")) as f:
                for line in f:
                    if line.startswith("#"):
                        continue
                    p = line.rstrip("\n").split("\t")
                    rows.append({"input": p[0], "ino": int(p[2]), "offset": int(p[5]),
                                 "path": p[7]})
        except OSError:
            pass
        return rows

    def check_logs(self):
        for r in range(1, self.runs + 1):
            with open(self.log_path(r), "rb") as f:
                data = f.read()
            if sanitizer_report(data) is not None:
                sys.stderr.write(data.decode(errors="replace")[-6000:])
                raise TestFailure("sanitizer report in %s" % self.log_path(r))

    def dump(self):
        for r in range(1, self.runs + 1):
            try:
                with open(self.log_path(r), "rb") as f:
                    data = f.read().decode(errors="replace")
                sys.stderr.write("----- %s (tail) -----\n%s\n" % (self.log_path(r),
                                                                  data[-4000:]))
            except OSError:
                pass

    def kill_if_running(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@contextlib.contextmanager
def guard(*agents):
    """Runs a test's body: afterwards the agents' logs must hold no
    sanitizer report; on a failure their logs are printed; agents still
    running are killed however the body ends."""
    try:
        yield
        for a in agents:
            a.check_logs()
    except BaseException:
        for a in agents:
            a.dump()
        raise
    finally:
        for a in agents:
            a.kill_if_running()


def consume(bootstrap, topic, timeout=300):
    """Every value of a topic (all partitions), via kcat -C -e, as parsed JSON."""
    out = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                          "-q", "-f", "%s\n"], capture_output=True, timeout=timeout)
    if out.returncode != 0:
        raise TestFailure("kcat -C %s: %s" % (topic, out.stderr.decode(errors="replace")))
    vals = []
    for line in out.stdout.split(b"\n"):
        if line:
            vals.append(json.loads(line))
    return vals


def seqs(values):
    """The seq=N of each event's message, in topic order."""
    out = []
    for v in values:
        m = SEQ.search(v["message"])
        if m is None:
            raise TestFailure("event without seq: %r" % v)
        out.append(int(m.group(1)))
    return out


def access_line(i, pad=0):
    """One ~200-byte access-log line carrying seq=i."""
    return ('10.%d.%d.%d - - [26/Nov/2026:10:%02d:%02d +0000] "GET /api/v1/items/%08d?page=%d '
            'HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0" seq=%d%s\n'
            % (i % 7, (i // 7) % 256, i % 251, (i // 60) % 60, i % 60, i, i % 13,
               (200, 200, 200, 304, 404, 500)[i % 6], 100 + i % 9000, i, "x" * pad))


def free_port(kind=socket.SOCK_STREAM):
    """A port of 127.0.0.1 free just now (TCP, or UDP with SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(a, what=b"listening on", timeout=30):
    """Waits until the agent's current log says its listeners are up."""
    def up():
        with open(a.log_path(), "rb") as f:
            return what in f.read()
    wait_for(up, timeout, "the agent's listeners")


def sanitized():
    """True for an ASan build: its RSS holds shadow memory and a quarantine."""
    with open(AGENT, "rb") as f:
        return b"__asan_init" in f.read()


def require_kcat():
    from tributary_harness import Skip
    if subprocess.run(["sh", "-c", "command -v kcat"], capture_output=True).returncode != 0:
        raise Skip("kcat is not installed (scripts/test installs it)")
    if not os.access(AGENT, os.X_OK):
        raise TestFailure("%s is not built" % AGENT)


def rotating_writer(path, n, rate, every, mode, gens):
    """Writes n access lines to path at `rate` lines/s, rotating every `every`
    seconds by `mode` ("rename": path -> path.1 -> path.2 …, then a new path;
    "copytruncate": copy path to path.K, then truncate it, right after a
    batch, so the agent has often not read the batch's end). gens gets, per
    file generation, [first seq, last seq]."""
    import shutil
    batch = max(1, rate // 100)
    t0 = time.monotonic()
    last_rot = t0
    f = open(path, "a")
    first = 0
    k = 0
    for base in range(0, n, batch):
        f.write("".join(access_line(i) for i in range(base, min(n, base + batch))))
        f.flush()
        now = time.monotonic()
        if now - last_rot >= every and base + batch < n:
            last_rot = now
            k += 1
            if mode == "rename":
                f.close()
                for j in range(k - 1, 0, -1):
                    os.rename("%s.%d" % (path, j), "%s.%d" % (path, j + 1))
                os.rename(path, path + ".1")
                gens.append([first, base + batch - 1])
                first = base + batch
                f = open(path, "a")
            else:
                shutil.copyfile(path, "%s.%d" % (path, k))
                os.truncate(path, 0)
                gens.append([first, base + batch - 1])
                first = base + batch
        target = t0 + (base + batch) / rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    f.close()
    gens.append([first, n - 1])
