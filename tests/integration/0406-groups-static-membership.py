# SPDX-License-Identifier: Apache-2.0
"""Static membership (KIP-345) with librdkafka's group.instance.id: two
static members share a 6-partition topic; the follower is SIGKILLed and
restarted with the same instance id within its session timeout. It gets
its partitions back without a rebalance: the other member's assignment
never changes, and `tributary groups describe` shows both instance ids."""
import importlib.util
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "grouplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0499_grouplib.py"))
grouplib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grouplib)

TOPIC = GROUP = "g-static"


def main(c):
    grouplib.create_topic(c.bootstrap, TOPIC)
    grouplib.produce(c.bootstrap, TOPIC, 0, 60)
    members = []

    def add(name, inst):
        m = grouplib.Member(name, "ck", c.tmp, c.bootstrap, TOPIC, GROUP,
                            {"TRIB_INSTANCE_ID": inst})
        members.append(m)
        return m

    m1 = add("m1", "static-a")
    grouplib.wait_for(lambda: grouplib.balanced(members, [6]), "m1 with all partitions", 60,
                      members)
    m2 = add("m2", "static-b")
    grouplib.wait_for(lambda: grouplib.balanced(members, [3, 3]), "2 static members", 60,
                      members)
    before = list(m1.parts), list(m2.parts)
    hist = len(m1.assigned_history)
    log("static members: m1 %s, m2 %s" % before)
    m2.kill()
    t0 = time.monotonic()
    m3 = add("m2-again", "static-b")
    grouplib.wait_for(lambda: grouplib.balanced(members, [3, 3]), "m2 back", 60, members)
    if m3.parts != before[1]:
        raise TestFailure("the restarted static member got %s, it had %s" % (m3.parts, before[1]))
    time.sleep(1.0)  # a rebalance, if one were coming, would show in m1's callbacks by now
    for m in members:
        m.pump()
    if len(m1.assigned_history) != hist or m1.parts != before[0]:
        raise TestFailure("m1 saw a rebalance: %s" % m1.assigned_history)
    log("m2 restarted with the same instance id: back on %s after %.1fs, m1 untouched"
        % (m3.parts, time.monotonic() - t0))
    out = c.cli("groups", "describe", "--group", GROUP).stdout
    if "static-a" not in out or "static-b" not in out or "2 members" not in out:
        raise TestFailure("groups describe:\n%s" % out)
    for m in (m1, m3):
        m.leave()
    for m in (m1, m3):
        m.finish()


run_test(main, grouplib.config_args())
