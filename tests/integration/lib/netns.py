# SPDX-License-Identifier: Apache-2.0
"""Tier B: a cluster whose nodes each have their own network namespace.

Three ZooKeeper servers (one ensemble) and three collectors, each in a
network namespace with one veth on a bridge (in a namespace of its own),
addresses 10.213.N.11-13 (ZooKeeper) and .21-23 (collectors) on a /24
picked free; the test's own namespace joins the bridge as .254, so the
clients reach every broker whatever the faults. Faults are nftables rules
inside a node's namespace (its own table, removed to heal), so only
traffic between cluster nodes is cut:

    cut(node, peers, inbound=True, outbound=True)
    heal(node)

NetRun is queue_workload.Run on that topology, with these faults:

  cut-leader-zk         the leader of a partition loses ZooKeeper (both ways)
  cut-leader-followers  the leader of a partition loses the other brokers
  split                 {that leader, one ZooKeeper} / {the rest}
  oneway                the leader's packets to the other nodes are dropped
                        (it still receives)

each held for 1.5 session timeouts, then healed. Needs root, ip and nft
(available() says why not). Everything is removed however the run ends.
"""
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time

from tributary_harness import READY_TIMEOUT, Skip, TestFailure, log  # noqa: F401
from queue_workload import PortBroker, Run
from zk_cluster import Cluster, ZK_CLASSPATH, zk_four_letter

QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

TABLE = "trib_fault"


def available():
    if os.geteuid() != 0:
        raise Skip("network namespaces need root")
    for tool in ("ip", "nft", "java"):
        if not shutil.which(tool):
            raise Skip("%s is not installed" % tool)


def sh(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise TestFailure("%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


def pick_subnet():
    used = sh("ip", "-4", "route", "show").stdout + sh("ip", "-4", "addr", "show").stdout
    for n in range(10 + os.getpid() % 200, 250):
        net = "10.213.%d." % n
        if net not in used:
            return net
    raise TestFailure("no free 10.213.N.0/24 subnet")


class Net:
    """The namespaces, the bridge and the nodes' addresses."""

    def __init__(self, tag):
        self.tag = tag
        self.prefix = pick_subnet()
        self.hub = "%s-hub" % tag
        self.nodes = {}  # name -> (namespace, ip)
        self.root_if = "%s-r" % tag
        sh("ip", "netns", "add", self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        sh("ip", "link", "add", self.root_if, "type", "veth", "peer", "name", "root",
           "netns", self.hub)
        sh("ip", "-n", self.hub, "link", "set", "root", "master", "br0", "up")
        sh("ip", "addr", "add", self.prefix + "254/24", "dev", self.root_if)
        sh("ip", "link", "set", self.root_if, "up")
        self.root_ip = self.prefix + "254"

    def add(self, name, host):
        ns = "%s-%s" % (self.tag, name)
        ip = self.prefix + str(host)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "v" + name, "netns", ns, "type", "veth", "peer", "name", name,
           "netns", self.hub)
        sh("ip", "-n", self.hub, "link", "set", name, "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "v" + name, "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.nodes[name] = (ns, ip)
        return ns, ip

    def exec_prefix(self, name):
        return ["ip", "netns", "exec", self.nodes[name][0]]

    def cut(self, name, peers, inbound=True, outbound=True):
        ns = self.nodes[name][0]
        ips = ", ".join(self.nodes[p][1] for p in peers)
        cmds = ["add table inet %s" % TABLE]
        if inbound:
            cmds += ["add chain inet %s in { type filter hook input priority 0; }" % TABLE,
                     "add rule inet %s in ip saddr { %s } drop" % (TABLE, ips)]
        if outbound:
            cmds += ["add chain inet %s out { type filter hook output priority 0; }" % TABLE,
                     "add rule inet %s out ip daddr { %s } drop" % (TABLE, ips)]
        for c in cmds:
            sh("ip", "netns", "exec", ns, "nft", *c.split())
        log("cut %s from %s (%s)" % (name, ",".join(peers),
                                     "both ways" if inbound and outbound else
                                     "inbound" if inbound else "outbound"))

    def heal(self, name):
        ns = self.nodes[name][0]
        sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", TABLE, check=False)

    def heal_all(self):
        for name in self.nodes:
            self.heal(name)

    def destroy(self):
        for ns, _ip in self.nodes.values():
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.root_if, check=False)
        sh("ip", "netns", "del", self.hub, check=False)


class Ensemble:
    """Three ZooKeeper servers, one per namespace; the interface zk_cluster's
    Cluster and Run use (connect, start, stop, kill, proc, logs)."""

    def __init__(self, root, net, names):
        self.net = net
        self.names = names
        self.dir = os.path.join(root, "zookeeper")
        self.logs = []
        self.procs = {}
        self.port = 2181
        servers = "".join("server.%d=%s:2888:3888\n" % (i + 1, net.nodes[n][1])
                          for i, n in enumerate(names))
        for i, n in enumerate(names):
            d = os.path.join(self.dir, n)
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            with open(os.path.join(d, "zoo.cfg"), "w") as f:
                f.write("tickTime=500\ninitLimit=20\nsyncLimit=5\ndataDir=%s\nclientPort=2181\n"
                        "clientPortAddress=%s\nadmin.enableServer=false\n"
                        "4lw.commands.whitelist=ruok,srvr,mntr\nmaxSessionTimeout=60000\n%s"
                        % (os.path.join(d, "data"), net.nodes[n][1], servers))

    @property
    def connect(self):
        return ",".join("%s:2181" % self.net.nodes[n][1] for n in self.names) + "/tributary"

    @property
    def proc(self):
        return next(iter(self.procs.values()), None)

    def start_one(self, n):
        d = os.path.join(self.dir, n)
        logpath = os.path.join(d, "zookeeper.%d.log" % (len(self.logs) + 1))
        self.logs.append(logpath)
        with open(logpath, "wb") as lf:
            self.procs[n] = subprocess.Popen(
                self.net.exec_prefix(n) + ["java", "-Xmx128m", "-cp", ZK_CLASSPATH, QUORUM_MAIN,
                                           os.path.join(d, "zoo.cfg")],
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def start(self, port=None):
        for n in self.names:
            if n not in self.procs:
                self.start_one(n)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            modes = []
            for n in self.names:
                try:
                    out = zk_four_letter_at(self.net.nodes[n][1], b"srvr")
                except OSError:
                    out = b""
                modes.append(b"Mode: leader" in out or b"Mode: follower" in out)
            if all(modes):
                log("zookeeper ensemble serving on %s" % self.connect)
                return self
            time.sleep(0.5)
        raise TestFailure("the ZooKeeper ensemble did not form a quorum within 90 s")

    def kill(self):
        self.stop()

    def stop(self):
        for n, p in list(self.procs.items()):
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except OSError:
                    pass
                p.kill()
            p.wait()
            del self.procs[n]


def zk_four_letter_at(host, cmd, timeout=2.0):
    with socket.create_connection((host, 2181), timeout=timeout) as s:
        s.sendall(cmd)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


class NetRun(Run):
    """The queue workload with network faults between namespaced nodes."""

    def __init__(self, faults, hold_s=None, **kw):
        super().__init__(**kw)
        self.fault_list = faults
        self.hold_s = hold_s or self.session_s * 1.5
        self.net = None

    def setup(self):
        self.rf = 3
        self.net = Net("tb%d" % (os.getpid() % 100000))
        zks = ["zk1", "zk2", "zk3"]
        for i, n in enumerate(zks):
            self.net.add(n, 11 + i)
        ens = Ensemble(self.cluster.root, self.net, zks)
        self.cluster.zk = ens
        conf = ("cluster:\n  session_timeout: %ds\n  replica.lag.time.max.ms: %d\n"
                % (self.session_s, self.lag_ms))
        for i in range(1, 4):
            name = "b%d" % i
            ns, ip = self.net.add(name, 20 + i)
            b = PortBroker(self.cluster.root, i, ens, "%ds" % self.session_s, conf_extra=conf,
                           host=ip, prefix=self.net.exec_prefix(name), kafka_port=9092,
                           metrics_port=9644)
            self.cluster.brokers[i] = b
            self.brokers[i] = b
        ens.start()
        for b in self.brokers.values():
            b.spawn()
        for b in self.brokers.values():
            b.wait_ready()
        self.create_topic()

    def fault(self, kind):
        if kind not in ("cut-leader-zk", "cut-leader-followers", "split", "oneway"):
            return super().fault(kind)
        h = self.history
        leader, _ctl = self.pick_leader()
        if leader is None:
            leader = self.rng.choice(list(self.brokers))
        me = "b%d" % leader
        others = ["b%d" % i for i in self.brokers if i != leader]
        zks = ["zk1", "zk2", "zk3"]
        h.add(type="nemesis", f=kind, target=leader, phase="start")
        try:
            if kind == "cut-leader-zk":
                self.net.cut(me, zks)
            elif kind == "cut-leader-followers":
                self.net.cut(me, others)
            elif kind == "oneway":
                self.net.cut(me, others + zks, inbound=False)
            else:
                minority = [me, "zk1"]
                majority = others + ["zk2", "zk3"]
                for n in minority:
                    self.net.cut(n, majority)
                for n in majority:
                    self.net.cut(n, minority)
            time.sleep(self.hold_s)
        finally:
            self.net.heal_all()
            h.add(type="nemesis", f=kind, target=leader, phase="end")

    def cluster_ctx(self, root):
        run = self

        class Ctx:
            def __enter__(self_):
                run.cluster = Cluster(brokers=0, session_timeout="%ds" % run.session_s,
                                      root=root)
                return run.cluster

            def __exit__(self_, et, e, tb):
                try:
                    return run.cluster.__exit__(et, e, tb)
                finally:
                    if run.net is not None:
                        run.net.destroy()
        return Ctx()


__all__ = ["available", "Net", "Ensemble", "NetRun", "zk_four_letter"]
