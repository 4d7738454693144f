# SPDX-License-Identifier: Apache-2.0
"""Consumer groups with kafkajs 2.2.4 (JoinGroup v5, MEMBER_ID_REQUIRED, its
RoundRobinAssigner; a node member script per process): three members of a group on a 6-partition topic
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
    grouplib.scenario(c, "kjs", group="g-kjs", topic="g-kjs")
    offs = grouplib.committed(c.bootstrap, "g-kjs", "g-kjs")
    if sum(offs.values()) != 1800:
        raise TestFailure("committed offsets %s do not add up to the 1800 records" % offs)
    log("committed offsets at the log end: %s" % offs)


run_test(main, grouplib.config_args())
