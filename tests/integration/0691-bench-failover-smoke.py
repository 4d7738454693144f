# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-failover with tiny counts: one SIGKILL and one SIGTERM
of the leader of a replication factor 1 topic on a one-broker cluster (the
producer waits for the restart), each fault's line and the p50/p99 lines
with the session timeout are printed, and every record the producer sent
was acknowledged in the end. A smoke test of the benchmark's plumbing: the
figures' values are never checked.
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
    p = subprocess.run(["/usr/bin/python3", os.path.join(BIN_DIR, "tributary-bench-failover"),
                        "--brokers", "1", "--replication-factor", "1", "--faults", "1",
                        "--kinds", "kill,term", "--rate", "50", "--session-timeout", "3s",
                        "--interval", "0.5", "--max-wait", "60", "--repo", ROOT,
                        "--bin", BIN_DIR], capture_output=True, text=True, timeout=280)
    log("exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr[-3000:]))
    want = [r"^fault 1 \(kill, leader 1\): unavailable %s s" % FIG,
            r"^fault 1 \(term, leader 1\): unavailable %s s" % FIG,
            r"^kill: unavailability p50 %s s, p99 %s s, max %s s over 1 faults; "
            r"session timeout 3 s$" % (FIG, FIG, FIG),
            r"^term: unavailability p50 %s s, p99 %s s" % (FIG, FIG)]
    missing = [w for w in want if not re.search(w, p.stdout, re.M)]
    m = re.search(r"^producer: (\d+) sent, (\d+) acknowledged, 0 delivery errors, "
                  r"0 fatal errors, 0 unsent", p.stdout, re.M)
    if p.returncode != 0 or missing or not m or m.group(1) != m.group(2):
        log("FAIL: exit %d; missing %s; producer line %s" % (p.returncode, missing,
                                                              m.group(0) if m else None))
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
