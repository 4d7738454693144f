# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the 05xx sink tests (not a test itself).

    pg = Postgres(tmpdir).start()          # a throwaway PostgreSQL 15 (pgtest.sh)
    pg.sql("select count(*) from t")       # -> "42"
    pg.stop(); pg.restart(); pg.kill()
    produce_events(bootstrap, topic, n, partitions)   # agent-shaped JSON events
    group_lag(c, "sink.pg")                # {(topic, partition): (committed, end, lag)}
    write_config(path, text)

The server runs as nobody when the test runs as root, listens on 127.0.0.1
on an ephemeral port, and is stopped (immediate) by a watcher when this
process exits, however it exits.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import Skip, TestFailure, log  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PGTEST = os.path.join(HERE, "..", "unit", "sinks", "pgtest.sh")
BUILD = os.environ.get("TRIB_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))


class Postgres:
    def __init__(self, tmpdir, settings=("fsync = off",)):
        self.dir = os.path.join(tmpdir, "pg")
        self.settings = list(settings)
        self.port = None

    def _run(self, *args, check=True):
        p = subprocess.run(["sh", PGTEST] + list(args), capture_output=True, text=True,
                           timeout=120)
        if p.returncode == 77:
            raise Skip("no PostgreSQL server binaries (install postgresql)")
        if check and p.returncode != 0:
            raise TestFailure("pgtest.sh %s: %s" % (args[0], p.stderr.strip()))
        return p.stdout.strip()

    def start(self):
        self.port = int(self._run("start", self.dir, str(os.getpid()), *self.settings))
        log("postgres on 127.0.0.1:%d" % self.port)
        return self

    def conninfo(self):
        return "host=127.0.0.1 port=%d user=postgres dbname=postgres" % self.port

    def sql(self, q):
        return self._run("psql", self.dir, q)

    def stop(self):
        self._run("stop", self.dir)

    def restart(self):
        self._run("restart", self.dir)

    def kill(self):
        self._run("kill", self.dir, check=False)


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)


def event(i, host_count=16):
    host = "web-%02d" % (i % host_count)
    return host.encode(), (
        '{"@timestamp":"2026-11-26T12:00:%02d.%03dZ","message":"GET /item/%d HTTP/1.1 200",'
        '"host":"%s","source":"/var/log/nginx/access.log","status":200,"bytes":%d,"seq":%d}'
        % (i // 1000 % 60, i % 1000, i, host, 100 + i % 900, i)).encode()


def produce_events(bootstrap, topic, start, n, partitions, bad=(), mistyped=()):
    """Produces events start..start+n-1, event i into partition i % partitions. Values at
    positions in `bad` are not JSON; at positions in `mistyped`, "status" is a string.
    Returns {(partition, offset): seq}."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                  "enable.idempotence": True, "batch.num.messages": 2000})
    where = {}
    errors = []

    def cb(seq):
        def done(err, msg):
            if err is not None:
                errors.append(err)
            else:
                where[(msg.partition(), msg.offset())] = seq
        return done

    for i in range(start, start + n):
        k, v = event(i)
        if i in bad:
            v = b"not json {" + str(i).encode()
        elif i in mistyped:
            v = v.replace(b'"status":200', b'"status":"oops"')
        while True:
            try:
                p.produce(topic, key=k, value=v, partition=i % partitions, on_delivery=cb(i))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(60) != 0 or errors:
        raise TestFailure("produce failed: %s" % errors[:3])
    return where


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def group_lag(c, group):
    """{(topic, partition): (committed, log end, lag)} from `tributary groups describe`."""
    out = c.cli("groups", "describe", group, check=False).stdout
    res = {}
    started = False
    for line in out.splitlines():
        w = line.split()
        if w[:2] == ["TOPIC", "PARTITION"]:
            started = True
            continue
        if started and (not w or w[0] == "MEMBERS"):
            break
        if started and len(w) >= 5:
            try:
                res[(w[0], int(w[1]))] = (int(w[2]) if w[2] != "-" else -1, int(w[3]),
                                          int(w[4]) if w[4] != "-" else -1)
            except ValueError:
                pass
    return res


def committed_and_ends(bootstrap, group, topic, partitions):
    """{partition: (committed offset, high watermark)} of `group` on `topic` (a cluster's
    sink group: offsets committed through the cluster)."""
    from confluent_kafka import Consumer, TopicPartition
    k = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = k.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        out = {}
        for tp in tps:
            lo, hi = k.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=20)
            out[tp.partition] = (tp.offset, hi)
        return out
    finally:
        k.close()


def read_dlq(bootstrap, topic, expect):
    """The dead-letter topic's messages: read for up to 20 s, and 3 s more once
    `expect` have come (to see one more if there is one)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlq-reader",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
            if len(out) == expect:
                deadline = min(deadline, time.monotonic() + 3)
    c.close()
    return out


def wait_for(what, fn, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last is True:
            return
        time.sleep(interval)
    raise TestFailure("timed out after %gs waiting for %s (last: %r)" % (timeout, what, last))


class ClickHouse:
    """Debian's clickhouse-server (18.16) in a temp dir, 127.0.0.1 only, ephemeral ports.
    It runs in the foreground as our child and dies with us (PR_SET_PDEATHSIG)."""

    def __init__(self, tmpdir):
        self.dir = os.path.join(tmpdir, "ch")
        self.proc = None
        self.http_port = None

    def start(self):
        import shutil
        import socket
        import urllib.request
        binary = shutil.which("clickhouse-server") or shutil.which("clickhouse")
        if not binary:
            raise Skip("no clickhouse-server (install clickhouse-server)")
        os.makedirs(self.dir, exist_ok=True)
        if self.http_port is None:  # a restart keeps its ports (sinks know the URL)
            ports = []
            socks = []
            for _ in range(3):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
                socks.append(s)
            for s in socks:
                s.close()
            self.ports = ports
        self.http_port, tcp_port, inter_port = self.ports
        d = self.dir
        with open(os.path.join(d, "users.xml"), "w") as f:
            f.write("<yandex><profiles><default></default></profiles><users><default>"
                    "<password></password><networks><ip>127.0.0.1</ip></networks>"
                    "<profile>default</profile><quota>default</quota></default></users>"
                    "<quotas><default></default></quotas></yandex>\n")
        with open(os.path.join(d, "config.xml"), "w") as f:
            f.write("""<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog>
    <console>0</console></logger>
  <http_port>{h}</http_port><tcp_port>{t}</tcp_port>
  <interserver_http_port>{i}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
""".format(d=d, h=self.http_port, t=tcp_port, i=inter_port))
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)

        def die_with_parent():
            libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL

        self.proc = subprocess.Popen([binary, "--config-file=" + os.path.join(d, "config.xml")],
                                     stdout=open(os.path.join(d, "stdout.log"), "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=d, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 60
        while True:
            try:
                v = urllib.request.urlopen("http://127.0.0.1:%d/?query=SELECT%%20version()"
                                           % self.http_port, timeout=2).read().decode().strip()
                log("clickhouse-server %s on 127.0.0.1:%d" % (v, self.http_port))
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise TestFailure("clickhouse-server did not start (see %s)" % d)
                time.sleep(0.2)

    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def sql(self, q):
        import urllib.request
        req = urllib.request.Request(self.url() + "/", data=q.encode())
        return urllib.request.urlopen(req, timeout=60).read().decode().strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
