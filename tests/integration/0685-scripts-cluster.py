# SPDX-License-Identifier: Apache-2.0
"""scripts/cluster's up, status and down (scripts/lib/cluster.py, which
scripts/cluster runs after building) on a temporary directory:
  1. `up DIR 3` starts ZooKeeper and three collectors, prints each broker
     and a bootstrap list of three addresses that `tributary cluster
     describe` answers through; a second `up` on the same DIR is refused;
  2. `status DIR` shows every process running, the bootstrap list, the
     three brokers, the controller, and no under-replicated or offline
     partitions;
  3. with one collector SIGKILLed, `status` shows it stopped and a
     bootstrap list of the other two;
  4. `down DIR` stops every process it started; the data stays.
Every process is stopped however the test ends.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import (BIN_DIR, CLI, ROOT, SKIP, Skip, TestFailure,  # noqa: E402
                               broker_available, log)
from zk_cluster import ZooKeeper, check  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "lib", "cluster.py")


def run(*args, want=0):
    env = dict(os.environ, TRIB_BIN_DIR=BIN_DIR)
    p = subprocess.run(["/usr/bin/python3", SCRIPT] + list(args), capture_output=True, text=True,
                       timeout=180, env=env)
    log("cluster.py %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    if p.returncode != want:
        raise TestFailure("cluster.py %s: exit %d, expected %d" % (" ".join(args), p.returncode,
                                                                    want))
    return p.stdout


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def pids(d):
    path = os.path.join(d, "cluster.state")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        st = json.load(f)
    return [st["zookeeper"]["pid"]] + [b["pid"] for b in st["brokers"]]


def main():
    broker_available()
    ZooKeeper.available()
    d = tempfile.mkdtemp(prefix="trib-scl.")
    started = []
    try:
        # 1. up
        out = run("up", d, "3")
        started = pids(d)
        check(len(started) == 4 and all(alive(p) for p in started), "processes %s" % started)
        m = re.search(r"^bootstrap: (\S+)$", out, re.M)
        check(m, "up printed no bootstrap list")
        boot = m.group(1).split(",")
        check(len(boot) == 3 and all(re.match(r"^127\.0\.0\.1:\d+$", a) for a in boot),
              "bootstrap list %s" % boot)
        for i in (1, 2, 3):
            check(re.search(r"^broker %d: 127\.0\.0\.1:\d+" % i, out, re.M), "broker %d line" % i)
        p = subprocess.run([CLI, "--bootstrap", ",".join(boot), "cluster", "describe"],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and len(re.findall(r"^  \d+\t", p.stdout, re.M)) == 3,
              "cluster describe through the list: %s%s" % (p.stdout, p.stderr))
        run("up", d, "3", want=1)

        # 2. status
        out = run("status", d)
        check(out.count(": running") == 4, "status: %s" % out)
        check(re.search(r"^bootstrap: %s$" % re.escape(",".join(boot)), out, re.M),
              "status bootstrap list")
        check(len(re.findall(r"^  \d+\t127\.0\.0\.1:\d+\track: ", out, re.M)) == 3, "brokers")
        check(re.search(r"^Controller: [123]$", out, re.M), "controller")
        check(re.search(r"^Under-replicated partitions: 0$", out, re.M) and
              re.search(r"^Offline partitions: 0$", out, re.M), "partition counts")

        # 3. a broker killed
        with open(os.path.join(d, "cluster.state")) as f:
            b3 = json.load(f)["brokers"][2]
        os.kill(b3["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while alive(b3["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        out = run("status", d)
        check(re.search(r"^broker 3 \S+: stopped$", out, re.M), "status after the kill: %s" % out)
        check(re.search(r"^bootstrap: %s$" % re.escape(",".join(boot[:2])), out, re.M),
              "bootstrap list after the kill")

        # 4. down
        run("down", d)
        check(not any(alive(p) for p in started), "still running after down: %s"
              % [p for p in started if alive(p)])
        check(os.path.isdir(os.path.join(d, "broker-1", "data")), "data removed")
        run("status", d, want=1)
    finally:
        for p in started:
            if alive(p):
                os.kill(p, signal.SIGKILL)
    if not os.environ.get("TRIB_KEEP_TMP"):
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    rc = 0
    try:
        main()
        log("PASS")
    except Skip as e:
        log("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        rc = 1
    sys.exit(rc)
