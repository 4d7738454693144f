# SPDX-License-Identifier: Apache-2.0
"""`tributary groups` against live groups: with two members of each client
(librdkafka, kafka-python, kafkajs when node is there) consuming a
6-partition topic, `groups describe` shows each member's
partitions as the members themselves report them, the committed offsets
they report, the log end offsets and lag 0; after they leave and more
records arrive it shows the group Empty with the lag; `groups list`,
`reset-offsets` (dry run, then --execute) and `delete` work."""
import importlib.util
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "grouplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0499_grouplib.py"))
grouplib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grouplib)

TOPIC = "cli-groups"
GROUP = "g-cli"


def describe(c, group=GROUP):
    """{(topic, partition): (current, end, lag, consumer)} and the state line."""
    out = c.cli("groups", "describe", "--group", group).stdout
    lines = out.splitlines()
    state = lines[0]
    rows = {}
    for line in lines[lines.index([l for l in lines if l.startswith("TOPIC ")][0]) + 1:]:
        if not line.strip():
            break
        w = line.split()
        rows[(w[0], int(w[1]))] = (w[2], w[3], w[4], w[5])
    return state, rows, out


def live_describe(c, kind):
    """Two live members of `kind`: describe matches what they report."""
    group = "g-live-" + kind
    members = [grouplib.Member("%s-%d" % (kind, i), kind, c.tmp, c.bootstrap, TOPIC, group)
               for i in (1, 2)]
    grouplib.wait_for(lambda: grouplib.balanced(members, [3, 3]), "2 members x 3 partitions",
                      60, members)
    grouplib.wait_for(lambda: sum(m.commits.get(p, 0) for m in members for p in range(6)) >= 300,
                      "every record committed", 60, members)
    state, rows, out = describe(c, group)
    owners = {}
    for (t, p), (cur, end, lag, who) in rows.items():
        owners.setdefault(who, set()).add(p)
        want = max(m.commits.get(p, -1) for m in members)
        if cur != str(want) or end != "50" or lag != "0":
            raise TestFailure("%s: %s-%d shows %s/%s/%s, members reported commit %d, end 50"
                              % (kind, t, p, cur, end, lag, want))
    if sorted(sorted(s) for s in owners.values()) != sorted(sorted(m.parts) for m in members):
        raise TestFailure("%s: describe's assignment %s differs from the members' %s"
                          % (kind, owners, [m.parts for m in members]))
    for m in members:
        m.leave()
    for m in members:
        m.finish()
    log("%s: describe matches the members' assignments and commits" % kind)


def main(c):
    grouplib.create_topic(c.bootstrap, TOPIC)
    grouplib.produce(c.bootstrap, TOPIC, 0, 300)
    live_describe(c, "kp")
    if grouplib.kjs_available():
        live_describe(c, "kjs")
    else:
        log("note: node/kafkajs not available, kafkajs members skipped")
    members = [grouplib.Member("m%d" % i, "ck", c.tmp, c.bootstrap, TOPIC, GROUP)
               for i in (1, 2)]
    grouplib.wait_for(lambda: grouplib.balanced(members, [3, 3]), "2 members x 3 partitions",
                      60, members)
    grouplib.wait_for(lambda: sum(m.commits.get(p, 0) for m in members for p in range(6)) >= 300,
                      "every record committed", 60, members)
    state, rows, out = describe(c)
    log("groups describe:\n" + out)
    if "state Stable" not in state or "2 members" not in state:
        raise TestFailure("describe header: %r" % state)
    owners = {}
    for (t, p), (cur, end, lag, who) in rows.items():
        owners.setdefault(who, set()).add(p)
        if end != "50" or lag != "0":
            raise TestFailure("%s-%d: end %s lag %s, expected 50 and 0" % (t, p, end, lag))
        want = max(m.commits.get(p, -1) for m in members)
        if cur != str(want):
            raise TestFailure("%s-%d: describe shows committed %s, the members reported %d"
                              % (t, p, cur, want))
    reported = sorted(sorted(m.parts) for m in members)
    if sorted(sorted(s) for s in owners.values()) != reported:
        raise TestFailure("describe's assignment %s differs from the members' %s"
                          % (owners, reported))
    lst = c.cli("groups", "list").stdout
    if not any(l.split()[:3] == [GROUP, "Stable", "consumer"] for l in lst.splitlines()[1:]):
        raise TestFailure("groups list: %r" % lst)

    for m in members:
        m.leave()
    for m in members:
        m.finish()
    grouplib.produce(c.bootstrap, TOPIC, 300, 60)
    state, rows, out = describe(c)
    if "state Empty" not in state or any(r[2] != "10" or r[3] != "-" for r in rows.values()):
        raise TestFailure("after the members left and 60 more records:\n%s" % out)
    log("after the members left: Empty, lag 10 on each partition")

    dry = c.cli("groups", "reset-offsets", "--group", GROUP, "--topic", TOPIC,
                "--to-earliest").stdout
    if "dry run" not in dry or describe(c)[1][(TOPIC, 0)][0] != "50":
        raise TestFailure("a dry run changed something:\n%s" % dry)
    c.cli("groups", "reset-offsets", "--group", GROUP, "--topic", TOPIC, "--partition", "3",
          "--shift-by", "-20", "--execute")
    rows = describe(c)[1]
    if rows[(TOPIC, 3)][0] != "30" or rows[(TOPIC, 3)][2] != "30" or rows[(TOPIC, 2)][0] != "50":
        raise TestFailure("reset-offsets --shift-by -20 on partition 3: %s" % rows)
    offs = grouplib.committed(c.bootstrap, GROUP, TOPIC)
    if offs[3] != 30:
        raise TestFailure("a client sees %s after the reset" % offs)
    c.cli("groups", "delete", "--group", GROUP)
    p = c.cli("groups", "delete", "--group", GROUP, check=False)
    if p.returncode != 1 or "GROUP_ID_NOT_FOUND" not in p.stderr:
        raise TestFailure("deleting twice: %d %s" % (p.returncode, p.stderr))
    p = c.cli("groups", "describe", "--group", GROUP, check=False)
    if p.returncode != 1 or "GROUP_ID_NOT_FOUND" not in p.stderr:
        raise TestFailure("describing a deleted group: %d %s" % (p.returncode, p.stderr))
    log("reset-offsets and delete work")


run_test(main, grouplib.config_args())
