# SPDX-License-Identifier: Apache-2.0
"""librdkafka 2.0.2's cooperative-sticky assignor (incremental assign and
revoke, KIP-429) through python3-confluent-kafka: three members of a group on a 6-partition topic
get two partitions each; a fourth joins, one leaves, one is SIGKILLed and
dropped after its 3 s session timeout; every record is consumed at least
once, re-delivered only from the killed member's uncommitted tail; the
committed offsets end at the log end."""
import importlib.util
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "grouplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0499_grouplib.py"))
grouplib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grouplib)


def main(c):
    members = grouplib.scenario(c, "ck", group="g-coop", topic="g-coop",
                               env_extra={"TRIB_ASSIGNOR": "cooperative-sticky"})
    offs = grouplib.committed(c.bootstrap, "g-coop", "g-coop")
    if sum(offs.values()) != 1800:
        raise TestFailure("committed offsets %s do not add up to the 1800 records" % offs)
    log("committed offsets at the log end: %s" % offs)
    # Incremental: m3 stayed throughout; an eager rebalance would have revoked its whole
    # assignment (an empty set) at each of the three rebalances, a cooperative one never does
    # before its final leave, and it keeps at least one partition it had.
    m3 = [m for m in members if m.name == "m3"][0]
    hist = m3.assigned_history
    first = next(i for i, h in enumerate(hist) if h)
    middle = hist[first:-1] if not hist[-1] else hist[first:]
    if any(not h for h in middle):
        raise TestFailure("m3's assignment went empty mid-run (eager revoke?): %s" % hist)
    if not set(hist[first]) & set(middle[-1]):
        raise TestFailure("m3 kept none of its first partitions (not sticky): %s" % hist)
    log("m3's assignments, incremental and sticky: %s" % hist)


run_test(main, grouplib.config_args())
