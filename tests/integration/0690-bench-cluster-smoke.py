# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-cluster with tiny counts: it starts a three-broker
cluster and a single-node collector, runs tributary-bench-produce against
both (acks=all; replication factors 1 and 3 on the cluster) and prints
each run's figures, the medians, the cluster/single-node ratio and the
RF 3 / RF 1 ratio. A smoke test of the benchmark's
plumbing: it checks that the figures are printed, never their values.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import BIN_DIR, ROOT, SKIP, Skip, broker_available, log  # noqa: E402
from zk_cluster import ZooKeeper  # noqa: E402

FIG = r"\d+\.\d+"


def main():
    try:
        broker_available()
        ZooKeeper.available()
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    p = subprocess.run(["/usr/bin/python3", os.path.join(BIN_DIR, "tributary-bench-cluster"),
                        "--runs", "2", "--records", "3000", "--mbytes", "1", "--sizes", "100",
                        "--replication-factors", "1,3", "--repo", ROOT, "--bin", BIN_DIR],
                       capture_output=True, text=True, timeout=280)
    log("exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr[-3000:]))
    want = [r"^run 1: 100B single-node %s MB/s \(%s CPU-s\); 100B rf1 %s MB/s" % (FIG, FIG, FIG),
            r"^run 2: ",
            r"^  100B acks=all single-node collector, rf1 +%s MB/s  collectors %s CPU-s" % (FIG,
                                                                                          FIG),
            r"^  100B acks=all cluster rf1 +%s MB/s" % FIG,
            r"^  100B acks=all cluster rf3 +%s MB/s" % FIG,
            r"^  100B cluster rf1 / single node: %sx" % FIG,
            r"^  100B cluster rf3 / cluster rf1 \(acks=all\): %sx" % FIG]
    missing = [w for w in want if not re.search(w, p.stdout, re.M)]
    if p.returncode != 0 or missing:
        log("FAIL: exit %d; missing %s" % (p.returncode, missing))
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
