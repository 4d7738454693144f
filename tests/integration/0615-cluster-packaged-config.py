# SPDX-License-Identifier: Apache-2.0
"""The packaged configuration becomes a cluster member with the documented edits.

Takes packaging/conf/collector.yaml (the packages' /etc/tributary/collector.yaml)
and applies, for nodes 1, 2 and 3, exactly the three edits its closing comment
block (and README, tributary-collector(8)) documents:
  1. node_id: 1            -> node_id: N
  2. listen: 127.0.0.1:9092 -> a listen address the others reach, plus an
                              `advertise:` line after it
  3. the commented `cluster:` block uncommented, its zookeeper line naming
     the ensemble.
On one machine the reachable address is 127.0.0.1 with a free port; the
other edits the test makes only because three nodes share one host are
data_dir (a temp dir) and metrics.listen (port 0). Each collector is started
the way the unit starts it: --config FILE and --ready-file, nothing else.

Checks, in order:
  1. conf/collector-cluster.yaml (the commented example) and the edited
     files pass --check-config;
  2. the documented migration of a node that already ran as a single node
     (the package starts it once): node 2's data directory used by the
     unedited file (node 1, local backend), then started as node 2 of the
     cluster, is refused with status 2 (a configuration error: the unit's
     RestartPreventExitStatus=2 does not restart it every 2 s) and the
     "belongs to node 1" reason;
     emptied as documented, it joins;
  3. one ZooKeeper and the three collectors form a cluster: `tributary
     cluster describe` on every node lists brokers 1, 2 and 3 at their
     advertised addresses and one controller;
  4. a topic created with replication factor 3 (and one created with the
     backend's default) shows three replicas, all in the ISR; records
     produced with acks=all through node 1 are consumed back whole through
     node 3 by kcat (librdkafka).
Every wait is bounded; every process stops however the test ends.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import (CLI, COLLECTOR, ROOT, SKIP, Skip, TestFailure,  # noqa: E402
                               check_sanitizer_files, log)
from zk_cluster import Broker, ZooKeeper, check, free_port, wait_for  # noqa: E402

PACKAGED = os.path.join(ROOT, "packaging", "conf", "collector.yaml")
EXAMPLE = os.path.join(ROOT, "conf", "collector-cluster.yaml")
RECORDS = 300


def member_config(text, node_id, port, zk_connect):
    """The documented edits (1-3) applied to the packaged file's text."""
    out = text
    out, n1 = re.subn(r"(?m)^node_id: 1$", "node_id: %d" % node_id, out)
    out, n2 = re.subn(r"(?m)^listen: 127\.0\.0\.1:9092$",
                      "listen: 127.0.0.1:%d\nadvertise: 127.0.0.1:%d" % (port, port), out)
    # The commented block: "# cluster:" and its indented "#   key: value" lines.
    m = re.search(r"(?m)^# cluster:\n((?:#   \S.*\n)+)", out)
    check(n1 == 1 and n2 == 1 and m is not None,
          "the packaged file no longer has the lines the documentation changes "
          "(node_id %d, listen %d, cluster block %s)" % (n1, n2, bool(m)))
    block = "cluster:\n" + "".join(l[2:] + "\n" for l in m.group(1).splitlines())
    block, nz = re.subn(r"(?m)^  zookeeper: .*$", "  zookeeper: %s" % zk_connect, block)
    check(nz == 1 and "backend: zookeeper" in block,
          "the commented cluster block lacks backend or zookeeper: %r" % block)
    return out[:m.start()] + block + out[m.end():]


def one_host_only(text, data_dir):
    """What differs only because the three nodes share this machine."""
    text, n1 = re.subn(r"(?m)^data_dir: .*$", "data_dir: %s" % data_dir, text)
    text, n2 = re.subn(r"(?m)^  listen: 127\.0\.0\.1:9644$", "  listen: 127.0.0.1:0", text)
    check(n1 == 1 and n2 == 1, "data_dir or metrics.listen not found in the packaged file")
    return text


class UnitBroker(Broker):
    """A collector started as the unit starts it: only --config and --ready-file."""

    def spawn(self):
        assert self.proc is None
        self.runs += 1
        self.ready = os.path.join(self.dir, "ready")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        logpath = os.path.join(self.dir, "collector.%d.log" % self.runs)
        self.logs.append(logpath)
        with open(logpath, "wb") as lf:
            self.proc = subprocess.Popen(
                [COLLECTOR, "--config", self.conf, "--ready-file", self.ready],
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True)
        return self


def check_config(path):
    p = subprocess.run([COLLECTOR, "--config", path, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "--check-config %s: status %d: %s"
          % (path, p.returncode, p.stderr.strip()))


def cli(bootstrap, *args, input=None):
    p = subprocess.run([CLI, "--bootstrap", bootstrap] + list(args), input=input,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "tributary %s: status %d: %s"
          % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


def replicas_in_isr(bootstrap, topic):
    """[(replicas, isr)] per partition of `topic` from `tributary topics describe`."""
    out = []
    for line in cli(bootstrap, "topics", "describe", topic).splitlines():
        r = re.search(r"Replicas: ([\d,]+)\s+Isr: ([\d,]*)", line)
        if r:
            out.append((sorted(r.group(1).split(",")), sorted(r.group(2).split(","))))
    return out


def main():
    with open(PACKAGED) as f:
        packaged = f.read()
    root = tempfile.mkdtemp(prefix="trib-clusterpkg.")
    zk = ZooKeeper(root)
    brokers = {}
    failed = True
    try:
        ZooKeeper.available()
        if not shutil.which("kcat"):
            raise Skip("kcat is missing")
        zk.start()
        ports = {}
        for i in (1, 2, 3):
            b = UnitBroker(root, i, zk, "18s")
            ports[i] = free_port()
            text = one_host_only(member_config(packaged, i, ports[i], zk.connect), b.data)
            with open(b.conf, "w") as f:
                f.write(text)
            brokers[i] = b

        # 1. The example and the edited files are valid.
        check_config(EXAMPLE)
        for b in brokers.values():
            check_config(b.conf)
        log("collector-cluster.yaml and the three edited files pass --check-config")

        # 2. Node 2's data directory, used once by the unedited packaged file.
        b2 = brokers[2]
        single = os.path.join(b2.dir, "single.yaml")
        with open(single, "w") as f:
            f.write(one_host_only(packaged, b2.data).replace(
                "listen: 127.0.0.1:9092", "listen: 127.0.0.1:0"))
        sb = UnitBroker(os.path.join(root, "single"), 2, zk, "18s")
        sb.conf = single
        sb.start()
        sb.kill("TERM")
        b2.spawn()
        try:
            st = b2.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise TestFailure("node 2 on node 1's data directory did not exit")
        b2.proc = None
        text = b2.log_text()
        check(st == 2 and "belongs to node 1, not node 2" in text,
              "node 2 on node 1's data directory: status %s, log %r" % (st, text[-400:]))
        log("node 2 on the single node's data directory refused: status 2, belongs to node 1")
        for name in os.listdir(b2.data):  # the documented step: empty it
            p = os.path.join(b2.data, name)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)

        # 3. Three members, one controller.
        for b in brokers.values():
            b.spawn()
        for b in brokers.values():
            b.wait_ready()
            check(b.bootstrap == "127.0.0.1:%d" % ports[b.id],
                  "node %d listens on %s, not its configured port %d"
                  % (b.id, b.bootstrap, ports[b.id]))

        def agreed():
            seen = set()
            for b in brokers.values():
                ctl, listed = b.describe()
                want = {i: "127.0.0.1:%d" % ports[i] for i in ports}
                if listed != want or ctl is None or ctl < 0:
                    return None
                seen.add(ctl)
            return seen.pop() if len(seen) == 1 else None
        ctl = wait_for("every node lists brokers 1-3 at their advertised addresses and one "
                       "controller", agreed, 90, 0.3)
        log("cluster %s: brokers 1, 2, 3, controller %d" % (brokers[1].cluster_id, ctl))

        # 4. Replication factor 3, acks=all, read back through another node.
        boot1, boot3 = brokers[1].bootstrap, brokers[3].bootstrap
        cli(boot1, "topics", "create", "--topic", "pkg.rf3", "--partitions", "3",
            "--replication-factor", "3")
        cli(boot1, "topics", "create", "--topic", "pkg.default", "--partitions", "2")
        for topic in ("pkg.rf3", "pkg.default"):
            def full_isr():
                parts = replicas_in_isr(boot3, topic)
                return parts if parts and all(len(r) == 3 and r == i for r, i in parts) else None
            parts = wait_for("%s: three replicas, all in the ISR" % topic, full_isr, 60, 0.3)
            log("%s: %d partitions, replicas and ISR %s" % (topic, len(parts), parts[0][0]))
        lines = "".join("k%d\tv%d\n" % (i % 7, i) for i in range(RECORDS))
        cli(boot1, "produce", "--topic", "pkg.rf3", "--acks", "all", "--key-separator", "\t",
            input=lines)
        p = subprocess.run(["kcat", "-C", "-b", boot3, "-t", "pkg.rf3", "-o", "beginning", "-e",
                            "-q", "-f", "%k\t%s\n", "-X", "socket.timeout.ms=10000"],
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "kcat: status %d: %s" % (p.returncode, p.stderr.strip()))
        got = sorted(p.stdout.splitlines())
        check(got == sorted(lines.splitlines()), "kcat through node 3 read %d records, %d "
              "produced (first differences: %s)" % (len(got), RECORDS,
                                                     sorted(set(got) ^ set(lines.splitlines()))[:5]))
        log("%d records produced with acks=all through node 1, read back through node 3" % RECORDS)
        failed = False
    finally:
        errors = []
        for b in brokers.values():
            if b.proc is not None:
                try:
                    if b.proc.poll() is not None:
                        errors.append("node %d died, status %s" % (b.id, b.proc.returncode))
                        b.proc = None
                    else:
                        b.kill("TERM")
                except TestFailure as e:
                    errors.append(str(e))
            try:
                check_sanitizer_files(b.logs)
            except TestFailure as e:
                errors.append(str(e))
        zk.stop()
        if failed or errors:
            for b in brokers.values():
                b.dump_logs()
            log("kept %s" % root)
        elif not os.environ.get("TRIB_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)
        if errors and not failed:
            raise TestFailure("; ".join(errors))


if __name__ == "__main__":
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
