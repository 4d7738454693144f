# SPDX-License-Identifier: Apache-2.0
"""A local cluster for the tests: one ZooKeeper and N collectors on 127.0.0.1.

    from zk_cluster import Cluster, wait_for

    with Cluster(brokers=3, session_timeout="6s") as cl:   # everything stops on exit
        cl.start()
        ctl = cl.wait_controller()                         # the broker id every one agrees on
        cl.broker(ctl).kill("KILL")
        ...

ZooKeeper is Debian's 3.8 run straight from its jars (the `zookeeper`
package; never its system service) with a generated zoo.cfg: a free
loopback port, tickTime=500, admin.enableServer=false, -Xmx256m, its data
in the cluster's temp dir. Each collector runs with --zookeeper
127.0.0.1:PORT/tributary, --node-id N, its own data dir, --listen and
--metrics on port 0 and a ready file, and a config that sets
cluster.session_timeout. Nothing uses a fixed port. However the `with`
block ends, every process is stopped (SIGCONT first for a paused one) and
the collectors' logs are checked for sanitizer reports. scripts/cluster
uses the same module for `up`, `status` and `down`.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tributary_harness import (CLI, COLLECTOR, READY_TIMEOUT, SKIP, Skip, TestFailure,  # noqa: E402
                               check_sanitizer_files, log)

ZK_JAR = "/usr/share/java/zookeeper.jar"
# slf4j-simple gives ZooKeeper's own log lines (to its log file) instead of
# the no-op logger's warning.
ZK_CLASSPATH = ZK_JAR + ":/usr/share/java/slf4j-simple.jar"
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
CHROOT = "/tributary"


def free_port():
    """A port free on 127.0.0.1 now (the caller retries if it is taken before use)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, fn, timeout, interval=0.1):
    """Calls fn() until it returns a true value (returned); TestFailure after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError) as e:
            last = e
        if time.monotonic() > deadline:
            raise TestFailure("%s: not within %gs%s" % (what, timeout,
                                                         " (last error: %s)" % last if last else ""))
        time.sleep(interval)


def zk_four_letter(port, cmd=b"ruok", timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


class ZkReader:
    """A small ZooKeeper client over the wire protocol (jute), enough for tests to
    check znodes: get(path) -> (bytes, version) or None, children(path) -> [names],
    set(path, data, version)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd.
        body = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16
        self._send(body)
        self._recv()
        self.xid = 0

    def _send(self, body):
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def _recvn(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise OSError("zookeeper closed the connection")
            out += chunk
        return out

    def _recv(self):
        (n,) = struct.unpack(">i", self._recvn(4))
        return self._recvn(n)

    @staticmethod
    def _path(path):
        p = path.encode()
        return struct.pack(">i", len(p)) + p

    def _call(self, op, path, tail=b"\0"):
        self.xid += 1
        self._send(struct.pack(">ii", self.xid, op) + self._path(path) + tail)
        while True:
            r = self._recv()
            xid, _zxid, err = struct.unpack(">iqi", r[:16])
            if xid == self.xid:
                return err, r[16:]

    def get(self, path):
        err, r = self._call(4, path)  # getData
        if err == -101:  # NONODE
            return None
        if err != 0:
            raise OSError("zookeeper getData %s: error %d" % (path, err))
        (n,) = struct.unpack(">i", r[:4])
        data = r[4:4 + n] if n >= 0 else b""
        stat = r[4 + max(n, 0):]
        version = struct.unpack(">i", stat[32:36])[0]
        return data, version

    def set(self, path, data, version):
        """setData at `version` (a test that plays a controller); True, or False on
        BADVERSION."""
        err, _ = self._call(5, path, struct.pack(">i", len(data)) + data +
                            struct.pack(">i", version))
        if err == -103:
            return False
        if err != 0:
            raise OSError("zookeeper setData %s: error %d" % (path, err))
        return True

    def get_json(self, path):
        v = self.get(path)
        return (json.loads(v[0].decode()), v[1]) if v else None

    def children(self, path):
        err, r = self._call(8, path)  # getChildren
        if err == -101:
            return None
        if err != 0:
            raise OSError("zookeeper getChildren %s: error %d" % (path, err))
        (n,) = struct.unpack(">i", r[:4])
        out, off = [], 4
        for _ in range(n):
            (ln,) = struct.unpack(">i", r[off:off + 4])
            out.append(r[off + 4:off + 4 + ln].decode())
            off += 4 + ln
        return out

    def close(self):
        self.sock.close()


class ZooKeeper:
    """One standalone ZooKeeper server; start() may be called again after kill()/stop()."""

    def __init__(self, root):
        self.dir = os.path.join(root, "zookeeper")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = None
        self.proc = None
        self.runs = 0
        self.logs = []

    @staticmethod
    def available():
        if not os.path.exists(ZK_JAR):
            raise Skip("%s is missing (Debian's zookeeper package)" % ZK_JAR)
        if not shutil.which("java"):
            raise Skip("no java to run ZooKeeper")

    def start(self, port=None):
        """Starts the server (on `port`, else the last one, else a free one) and waits for imok."""
        assert self.proc is None
        self.available()
        for attempt in range(5):
            self.port = port or self.port or free_port()
            cfg = os.path.join(self.dir, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=500\ninitLimit=10\nsyncLimit=5\n"
                        "dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                        "admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,mntr\n"
                        "maxSessionTimeout=60000\n" % (self.data, self.port))
            self.runs += 1
            logpath = os.path.join(self.dir, "zookeeper.%d.log" % self.runs)
            self.logs.append(logpath)
            with open(logpath, "wb") as lf:
                self.proc = subprocess.Popen(
                    ["java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
                     "-cp", ZK_CLASSPATH, ZK_MAIN, cfg],
                    stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if zk_four_letter(self.port) == b"imok":
                        log("zookeeper pid %d on 127.0.0.1:%d" % (self.proc.pid, self.port))
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            st = self.proc.poll()
            self._reap()
            if st is None:
                raise TestFailure("zookeeper did not answer within 60s (see %s)" % logpath)
            if port:
                raise TestFailure("zookeeper exited with status %s (see %s)" % (st, logpath))
            self.port = None  # taken meanwhile: another free port
        raise TestFailure("zookeeper did not start in 5 attempts")

    def _reap(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.kill(self.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def kill(self):
        """SIGKILL: the ensemble is gone; sessions survive in its data (snapshots and log)."""
        self._reap()
        log("zookeeper killed")

    def stop(self):
        self._reap()

    @property
    def connect(self):
        return "127.0.0.1:%d%s" % (self.port, CHROOT)

    def reader(self):
        """A ZkReader on this server; paths are absolute (CHROOT + "/brokers/...")."""
        return ZkReader(self.port)


class Broker:
    """One collector of the cluster."""

    def __init__(self, root, node_id, zk, session_timeout, extra_env=None, extra_args=()):
        self.id = node_id
        self.dir = os.path.join(root, "broker-%d" % node_id)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.zk = zk
        self.conf = os.path.join(self.dir, "collector.yaml")
        with open(self.conf, "w") as f:
            f.write("cluster:\n  session_timeout: %s\n" % session_timeout)
        self.env = dict(os.environ)
        self.env.update(extra_env or {})
        self.extra = list(extra_args)
        self.proc = None
        self.paused = False
        self.runs = 0
        self.logs = []
        self.bootstrap = None
        self.metrics_addr = None
        self.cluster_id = None

    def spawn(self):
        """Starts the process; returns without waiting (see wait_ready)."""
        assert self.proc is None
        self.runs += 1
        self.ready = os.path.join(self.dir, "ready")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        logpath = os.path.join(self.dir, "collector.%d.log" % self.runs)
        self.logs.append(logpath)
        with open(logpath, "wb") as lf:
            self.proc = subprocess.Popen(
                [COLLECTOR, "--config", self.conf, "--listen", "127.0.0.1:0",
                 "--metrics", "127.0.0.1:0", "--data-dir", self.data, "--ready-file", self.ready,
                 "--node-id", str(self.id), "--zookeeper", self.zk.connect] + self.extra,
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True)
        return self

    def wait_ready(self):
        def ready():
            st = self.proc.poll()
            if st is not None:
                self.proc = None
                raise TestFailure("broker %d exited with status %s before it was ready"
                                  % (self.id, st))
            if not os.path.exists(self.ready):
                return None
            with open(self.ready) as f:
                words = [l.split() for l in f.read().splitlines() if l.strip()]
            return words if len(words) >= 2 else None
        for w in wait_for("broker %d ready" % self.id, ready, READY_TIMEOUT, 0.05):
            if w[0] == "kafka":
                self.bootstrap = w[1]
            elif w[0] == "metrics":
                self.metrics_addr = w[1]
        log("broker %d pid %d: kafka %s, metrics %s"
            % (self.id, self.proc.pid, self.bootstrap, self.metrics_addr))
        return self

    def start(self):
        return self.spawn().wait_ready()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig="KILL"):
        """SIGKILL (or another signal name) and reap; TERM must end it with status 0."""
        assert self.proc is not None
        if self.paused:
            self.resume()
        signum = getattr(signal, "SIG" + sig)
        self.proc.send_signal(signum)
        try:
            st = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise TestFailure("broker %d did not exit within 30s of SIG%s" % (self.id, sig))
        self.proc = None
        if sig == "TERM" and st != 0:
            raise TestFailure("SIGTERM ended broker %d with status %s" % (self.id, st))
        log("broker %d stopped by SIG%s" % (self.id, sig))
        check_sanitizer_files(self.logs)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True
        log("broker %d paused (SIGSTOP)" % self.id)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False
        log("broker %d resumed (SIGCONT)" % self.id)

    def metrics(self):
        """The /metrics samples without labels: {name: float}."""
        with urllib.request.urlopen("http://%s/metrics" % self.metrics_addr, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def describe(self):
        """`tributary cluster describe` (DescribeCluster): (controller id, {id: host:port});
        the cluster id it showed is left in self.cluster_id."""
        p = subprocess.run([CLI, "cluster", "describe", "--bootstrap", self.bootstrap],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise ValueError("cluster describe: %s" % p.stderr.strip())
        controller, brokers = None, {}
        for line in p.stdout.splitlines():
            if line.startswith("Cluster ID:"):
                self.cluster_id = line.split()[2]
            elif line.startswith("Controller:"):
                controller = int(line.split()[1])
            elif line.startswith("  ") and "\t" in line:
                f = line.split("\t")
                brokers[int(f[0])] = f[1]
        return controller, brokers

    def metadata(self):
        """Metadata through confluent-kafka (librdkafka): (controller id, {id: host:port})."""
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 5000})
        md = a.list_topics(timeout=10)
        # librdkafka merges brokers it learnt before; ask the bootstrap broker's view.
        return md.controller_id, {b.id: "%s:%d" % (b.host, b.port) for b in md.brokers.values()}

    def log_text(self):
        out = []
        for path in self.logs:
            with open(path, "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def dump_logs(self, lines=60):
        for path in self.logs:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
            print("----- %s (last %d lines) -----" % (path, lines), file=sys.stderr)
            print("\n".join(text[-lines:]), file=sys.stderr)


class Cluster:
    """One ZooKeeper and brokers 1..N in one temp dir; a context manager that stops all."""

    def __init__(self, brokers=3, session_timeout="6s", root=None, extra_env=None):
        if not os.access(COLLECTOR, os.X_OK):
            raise TestFailure("%s is not built" % COLLECTOR)
        out = subprocess.run([COLLECTOR, "--help"], capture_output=True, timeout=30)
        if b"--zookeeper" not in out.stdout:
            raise TestFailure("tributary-collector has no --zookeeper")
        self.root = root or tempfile.mkdtemp(prefix="trib-zk.")
        self.keep = False
        self.zk = ZooKeeper(self.root)
        self.session_timeout = session_timeout
        self.extra_env = extra_env
        self.brokers = {}
        for i in range(1, brokers + 1):
            self.add_broker(i)

    def add_broker(self, node_id, extra_args=()):
        b = Broker(self.root, node_id, self.zk, self.session_timeout, self.extra_env, extra_args)
        self.brokers.setdefault(node_id, b)
        return b

    def broker(self, node_id):
        return self.brokers[node_id]

    def live(self):
        return [b for b in self.brokers.values() if b.alive()]

    def start(self):
        self.zk.start()
        for b in self.brokers.values():
            b.spawn()
        for b in self.brokers.values():
            b.wait_ready()
        return self

    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.live())

    def agreed_controller(self, expect_ids, via="describe"):
        """The controller id if every live broker lists exactly expect_ids and the same
        controller (not -1), else None."""
        seen = set()
        for b in self.live():
            if b.paused:
                continue
            ctl, brokers = b.describe() if via == "describe" else b.metadata()
            if set(brokers) != set(expect_ids) or ctl is None or ctl < 0:
                return None
            seen.add(ctl)
        return seen.pop() if len(seen) == 1 else None

    def wait_controller(self, expect_ids=None, timeout=60, via="describe"):
        ids = expect_ids or [b.id for b in self.live()]
        return wait_for("every broker lists %s and one controller (%s)" % (sorted(ids), via),
                        lambda: self.agreed_controller(ids, via), timeout, 0.2)

    def stop(self):
        errors = []
        for b in self.brokers.values():
            if b.proc is not None:
                try:
                    if b.proc.poll() is not None:
                        errors.append("broker %d died unexpectedly, status %s"
                                      % (b.id, b.proc.returncode))
                        b.proc = None
                    else:
                        b.kill("TERM")
                except TestFailure as e:
                    errors.append(str(e))
        self.zk.stop()
        for b in self.brokers.values():
            try:
                check_sanitizer_files(b.logs)
            except TestFailure as e:
                errors.append(str(e))
        if errors:
            raise TestFailure("; ".join(errors))

    def dump_logs(self):
        for b in self.brokers.values():
            b.dump_logs()
        for path in self.zk.logs:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
            print("----- %s (last 20 lines) -----" % path, file=sys.stderr)
            print("\n".join(text[-20:]), file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, etype, e, tb):
        failed = etype is not None
        try:
            self.stop()
        except TestFailure as err:
            if not failed:
                raise
            log("also: %s" % err)
        finally:
            if failed:
                self.dump_logs()
                log("kept %s" % self.root)
            elif not os.environ.get("TRIB_KEEP_TMP") and not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
        return False


# ---- small helpers the cluster tests share ----------------------------------------------


def check(cond, msg):
    if not cond:
        from tributary_harness import TestFailure
        raise TestFailure(msg)


def admin(bootstrap):
    """A confluent-kafka AdminClient on `bootstrap`."""
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def states(zk, topic):
    """{partition: state} of `topic` as ZooKeeper holds them (zk: Cluster.zk.reader())."""
    t = zk.get_json(CHROOT + "/brokers/topics/%s" % topic)
    out = {}
    for p in t[0]["partitions"]:
        out[int(p)] = zk.get_json(CHROOT + "/brokers/topics/%s/partitions/%s/state"
                                  % (topic, p))[0]
    return out


def run(main, failures=(TestFailure,)):
    """Runs a test's main(): logs PASS, or SKIP and exits 77, or FAIL (for `failures`;
    anything else propagates) and exits 1."""
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except failures as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
