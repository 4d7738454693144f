# SPDX-License-Identifier: Apache-2.0
"""scripts/cluster's work: a local cluster from tests/integration/lib/zk_cluster.py.

    cluster.py up DIR N       ZooKeeper and N collectors, left running; prints the bootstrap list
    cluster.py status DIR     what runs, the live brokers' bootstrap list, and
                              `tributary cluster describe` (brokers, controller,
                              under-replicated and offline partitions)
    cluster.py down DIR       SIGTERM to every collector, then ZooKeeper

DIR/cluster.state (JSON) records the processes between the commands.
"""
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lib"))
from tributary_harness import CLI, TestFailure  # noqa: E402
from zk_cluster import Cluster  # noqa: E402

SESSION_TIMEOUT = "6s"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie of ours counts as gone.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def load(d):
    path = os.path.join(d, "cluster.state")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def stop_pid(pid, what, timeout=30):
    if not alive(pid):
        return
    os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        print("%s (pid %d) did not stop within %ds: SIGKILL" % (what, pid, timeout))
        os.kill(pid, signal.SIGKILL)


def up(d, n):
    st = load(d)
    if st and (alive(st["zookeeper"]["pid"]) or any(alive(b["pid"]) for b in st["brokers"])):
        print("scripts/cluster: a cluster from %s is running; `scripts/cluster down --dir %s` "
              "first" % (d, d), file=sys.stderr)
        return 1
    os.makedirs(d, exist_ok=True)
    cl = Cluster(brokers=n, session_timeout=SESSION_TIMEOUT, root=d)
    try:
        cl.start()
        ctl = cl.wait_controller(timeout=60)
    except BaseException:
        try:
            cl.stop()
        finally:
            cl.dump_logs()
        raise
    state = {
        "zookeeper": {"pid": cl.zk.proc.pid, "port": cl.zk.port, "connect": cl.zk.connect},
        "brokers": [{"id": b.id, "pid": b.proc.pid, "bootstrap": b.bootstrap,
                     "metrics": b.metrics_addr, "log": b.logs[-1]} for b in cl.brokers.values()],
    }
    with open(os.path.join(d, "cluster.state"), "w") as f:
        json.dump(state, f, indent=1)
    print("ZooKeeper: %s (pid %d)" % (cl.zk.connect, cl.zk.proc.pid))
    for b in cl.brokers.values():
        print("broker %d: %s, metrics http://%s/metrics, pid %d, data %s"
              % (b.id, b.bootstrap, b.metrics_addr, b.proc.pid, b.data))
    print("controller: broker %d" % ctl)
    print("bootstrap: %s" % cl.bootstrap())
    return 0


def status(d):
    st = load(d)
    if not st:
        print("no cluster in %s" % d)
        return 1
    z = st["zookeeper"]
    print("ZooKeeper %s: %s" % (z["connect"], "running" if alive(z["pid"]) else "stopped"))
    live = []
    for b in st["brokers"]:
        up_ = alive(b["pid"])
        print("broker %d %s: %s" % (b["id"], b["bootstrap"], "running" if up_ else "stopped"))
        if up_:
            live.append(b["bootstrap"])
    if not live:
        return 1
    print("bootstrap: %s" % ",".join(live))
    print()
    p = subprocess.run([CLI, "cluster", "describe", "--bootstrap", ",".join(live)])
    return p.returncode


def down(d):
    st = load(d)
    if not st:
        print("no cluster in %s" % d)
        return 0
    for b in st["brokers"]:
        stop_pid(b["pid"], "broker %d" % b["id"])
    stop_pid(st["zookeeper"]["pid"], "ZooKeeper")
    os.unlink(os.path.join(d, "cluster.state"))
    print("stopped (data kept in %s)" % d)
    return 0


def main(argv):
    cmd, d = argv[0], os.path.abspath(argv[1])
    try:
        if cmd == "up":
            return up(d, int(argv[2]))
        if cmd == "status":
            return status(d)
        if cmd == "down":
            return down(d)
    except TestFailure as e:
        print("scripts/cluster: %s" % e, file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
