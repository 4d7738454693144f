# SPDX-License-Identifier: Apache-2.0
"""tributary topics describe and cluster describe: their columns, filters and
bootstrap lists, on the local backend and on a three-broker cluster.

Local backend (one collector):
  1. `topics describe A B` prints one topic line and one line per partition
     of each, with Leader, Replicas, Isr, LeaderEpoch, Status (all ok);
     `--under-replicated` and `--offline` print nothing (no such partitions);
     `cluster describe` counts 0 under-replicated and 0 offline partitions;
  2. a bootstrap list whose first address refuses connections works; a list
     of dead addresses is exit 3; an unknown topic among several is exit 1
     with UNKNOWN_TOPIC_OR_PARTITION; `topics create A B` is a usage error.
Cluster (ZooKeeper and brokers 1-3, lib/zk_cluster.py):
  3. `cluster describe` through a bootstrap list lists the three brokers
     and the controller every broker agrees on, and counts 0 and 0;
  4. topics created through the list are described through it: `spread`
     (4 partitions, the cluster's default replication factor 3) and `r3`
     (3 partitions, --replication-factor 3) have three distinct replicas
     per partition, all in the ISR, the leader among them, Status ok;
     `solo` (3 partitions, replication factor 1) one replica each;
  5. with a broker V other than the controller SIGKILLed, the bootstrap list
     that starts with V still answers, and once V's session expired:
     - cluster describe lists only the two live brokers;
     - every replicated partition shows V under Offline and not in the
       ISR, a live leader and Status under-replicated; `--under-replicated`
       prints exactly those, and cluster describe counts and lists them;
     - every `solo` partition on V has no leader and Status offline;
       `--offline` prints exactly those, and cluster describe counts them;
  6. V started again: cluster describe lists it, and the `solo` partitions
     on V have V as their leader again (their only ISR member), Status ok;
     cluster describe counts no offline partition.
"""
import os
import re
import socket
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import (CLI, SKIP, Collector, Skip, TestFailure,  # noqa: E402
                               broker_available, log)
from zk_cluster import Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 30  # a bound, not an expectation (2 shared CPUs)


def dead_address():
    """A loopback address where nothing listens (bound, never listening)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, "127.0.0.1:%d" % s.getsockname()[1]


def cli(bootstrap, *args, want=0):
    p = subprocess.run([CLI, "--bootstrap", bootstrap] + list(args), capture_output=True,
                       text=True, timeout=120)
    if p.returncode != want:
        raise TestFailure("tributary %s (bootstrap %s): exit %d, expected %d\n%s%s"
                          % (" ".join(args), bootstrap, p.returncode, want, p.stdout, p.stderr))
    return p


def parse_describe(out):
    """topics describe → ({topic: header fields}, [partition fields]), every field checked."""
    topics, parts = {}, []
    for line in out.splitlines():
        if line.startswith("Topic: "):
            f = dict(kv.split(": ", 1) for kv in line.split("\t") if ": " in kv)
            check(set(f) >= {"Topic", "TopicId", "PartitionCount", "ReplicationFactor"},
                  "topic line %r" % line)
            topics[f["Topic"]] = f
        elif line.startswith("\tTopic: "):
            cols = line[1:].split("\t")
            f = dict(c.split(": ", 1) for c in cols)
            names = [c.split(": ", 1)[0] for c in cols]
            check(names[:7] == ["Topic", "Partition", "Leader", "Replicas", "Isr", "LeaderEpoch",
                                "Status"] or
                  names[:8] == ["Topic", "Partition", "Leader", "Replicas", "Isr", "LeaderEpoch",
                                "Offline", "Status"], "partition columns %s in %r" % (names, line))
            ids = lambda s: [int(x) for x in s.split(",")] if s else []  # noqa: E731
            parts.append({"topic": f["Topic"], "partition": int(f["Partition"]),
                          "leader": -1 if f["Leader"] == "none" else int(f["Leader"]),
                          "replicas": ids(f["Replicas"]), "isr": ids(f["Isr"]),
                          "epoch": int(f["LeaderEpoch"]), "offline": ids(f.get("Offline", "")),
                          "status": f["Status"]})
        elif line.strip():
            raise TestFailure("unexpected describe line %r" % line)
    return topics, parts


BROKER_LINE = re.compile(r"^  (\d+)\t(\S+:\d+)\track: (\S+)$")


def parse_cluster(out):
    """cluster describe → dict(cluster_id, controller, brokers {id: addr}, urp [...], offline [...])"""
    r = {"brokers": {}, "urp": [], "offline": []}
    section = None
    for line in out.splitlines():
        m = BROKER_LINE.match(line)
        if line.startswith("Cluster ID: "):
            r["cluster_id"] = line.split(": ", 1)[1]
        elif line.startswith("Controller: "):
            r["controller"] = int(line.split(": ", 1)[1])
        elif line == "Brokers:":
            section = "brokers"
        elif section == "brokers" and m:
            r["brokers"][int(m.group(1))] = m.group(2)
        elif line.startswith("Under-replicated partitions: "):
            section, r["urp_count"] = "urp", int(line.split(": ", 1)[1])
        elif line.startswith("Offline partitions: "):
            section, r["offline_count"] = "offline", int(line.split(": ", 1)[1])
        elif section in ("urp", "offline") and line.startswith("  "):
            check("\t" not in line, "a partition line holds a tab: %r" % line)
            r[section].append(line.strip())
        else:
            raise TestFailure("unexpected cluster describe line %r" % line)
    check(r["urp_count"] == len(r["urp"]) and r["offline_count"] == len(r["offline"]),
          "counts do not match the lists:\n%s" % out)
    return r


def local_backend():
    c = Collector().start()
    try:
        cli(c.bootstrap, "topics", "create", "--topic", "alpha", "--partitions", "3")
        cli(c.bootstrap, "topics", "create", "--topic", "beta")
        cli(c.bootstrap, "topics", "create", "--topic", "gamma")
        # 1. columns, for two topics named as arguments (gamma is not asked for).
        topics, parts = parse_describe(cli(c.bootstrap, "topics", "describe", "beta",
                                           "alpha").stdout)
        check(sorted(topics) == ["alpha", "beta"], "topics %s" % sorted(topics))
        check(topics["alpha"]["PartitionCount"] == "3", "alpha %s" % topics["alpha"])
        check(sorted((p["topic"], p["partition"]) for p in parts) ==
              [("alpha", 0), ("alpha", 1), ("alpha", 2), ("beta", 0)], "partitions %s" % parts)
        for p in parts:
            check(p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1] and
                  p["epoch"] >= 0 and p["offline"] == [] and p["status"] == "ok",
                  "local partition %s" % p)
        for flag in ("--under-replicated", "--offline", "--under-replicated-partitions",
                     "--unavailable-partitions"):
            out = cli(c.bootstrap, "topics", "describe", flag).stdout
            check(out == "", "%s printed %r" % (flag, out))
        cl = parse_cluster(cli(c.bootstrap, "cluster", "describe").stdout)
        check(cl["brokers"] == {1: c.bootstrap} and cl["controller"] == 1,
              "local cluster describe %s" % cl)
        check(cl["urp_count"] == 0 and cl["offline_count"] == 0, "local counts %s" % cl)
        log("step 1: local columns, filters and counts")

        # 2. bootstrap lists, errors.
        s1, dead1 = dead_address()
        s2, dead2 = dead_address()
        try:
            topics, _ = parse_describe(cli(dead1 + "," + c.bootstrap, "topics", "describe",
                                           "--topic", "gamma").stdout)
            check(list(topics) == ["gamma"], "describe through %s,%s" % (dead1, c.bootstrap))
            p = cli(dead1 + "," + dead2, "cluster", "describe", want=3)
            check(dead2 in p.stderr, "all-dead error names the last address: %r" % p.stderr)
        finally:
            s1.close()
            s2.close()
        p = cli(c.bootstrap, "topics", "describe", "alpha", "nosuch", want=1)
        check("UNKNOWN_TOPIC_OR_PARTITION" in p.stderr and "nosuch" in p.stderr,
              "unknown topic: %r" % p.stderr)
        cli(c.bootstrap, "topics", "create", "one", "two", want=2)
        cli(c.bootstrap, "topics", "list", "--offline", want=2)
        log("step 2: bootstrap lists and errors")
        c.stop("TERM")
    finally:
        if c.proc is not None:
            c.stop("KILL")


def cluster():
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        ctl = cl.wait_controller(ids)
        boot = cl.bootstrap()
        # 3. cluster describe through the list.
        d = parse_cluster(cli(boot, "cluster", "describe").stdout)
        check(d["brokers"] == {b.id: b.bootstrap for b in cl.live()},
              "brokers %s, expected %s" % (d["brokers"], boot))
        check(d["controller"] == ctl, "controller %s, expected %d" % (d["controller"], ctl))
        check(d["urp_count"] == 0 and d["offline_count"] == 0, "cluster counts %s" % d)
        log("step 3: cluster describe lists %s, controller %d" % (sorted(d["brokers"]), ctl))

        # 4. topics through the list.
        cli(boot, "topics", "create", "--topic", "spread", "--partitions", "4")
        cli(boot, "topics", "create", "--topic", "r3", "--partitions", "3",
            "--replication-factor", "3")
        cli(boot, "topics", "create", "--topic", "solo", "--partitions", "3",
            "--replication-factor", "1")

        def described():
            t, ps = parse_describe(cli(boot, "topics", "describe", "spread", "r3", "solo").stdout)
            return (t, ps) if all(p["leader"] >= 0 for p in ps) else None
        topics, parts = wait_for("the new topics have leaders", described, BOUND, 0.2)
        check(sorted(topics) == ["r3", "solo", "spread"] and len(parts) == 10,
              "topics: %s %s" % (topics, parts))
        check(topics["r3"]["ReplicationFactor"] == "3" and
              topics["spread"]["ReplicationFactor"] == "3" and
              topics["solo"]["ReplicationFactor"] == "1", "replication factors %s" % topics)
        for p in parts:
            rf = 1 if p["topic"] == "solo" else 3
            check(len(set(p["replicas"])) == rf and set(p["replicas"]) <= set(ids) and
                  sorted(p["isr"]) == sorted(p["replicas"]) and p["leader"] in p["replicas"] and
                  p["status"] == "ok" and p["offline"] == [] and p["epoch"] >= 0,
                  "cluster partition %s" % p)
        log("step 4: described: %s" % [(p["topic"], p["partition"], p["leader"], p["replicas"])
                                       for p in parts])

        # 5. a dead broker first in the list.
        victim = [i for i in ids if i != ctl][0]
        dead = cl.broker(victim).bootstrap
        cl.broker(victim).kill("KILL")
        rest = [b.bootstrap for b in cl.live()]
        order = ",".join([dead] + rest)
        d = parse_cluster(cli(order, "cluster", "describe").stdout)
        check(d["controller"] in ids, "controller after the kill: %s" % d)
        live_ids = sorted(b.id for b in cl.live())
        wait_for("cluster describe through %s lists only %s" % (order, live_ids),
                 lambda: sorted(parse_cluster(cli(order, "cluster", "describe").stdout)
                                ["brokers"]) == live_ids, BOUND, 0.5)
        log("step 5: %s answered with broker %d dead first in the list" % (order, victim))

        def settled_without_victim():
            _, ps = parse_describe(cli(order, "topics", "describe", "spread", "r3",
                                       "solo").stdout)
            for p in ps:
                if victim not in p["replicas"]:
                    continue
                if p["topic"] == "solo":
                    if p["leader"] != -1:
                        return None
                elif victim in p["isr"] or p["leader"] < 0 or p["leader"] == victim:
                    return None
            return ps
        parts = wait_for("the partitions on broker %d settle without it" % victim,
                         settled_without_victim, BOUND, 0.5)
        urp, offline = set(), set()
        for p in parts:
            key = "%s partition %d" % (p["topic"], p["partition"])
            if victim not in p["replicas"]:
                check(p["status"] == "ok" and p["offline"] == [], "untouched partition %s" % p)
            elif p["topic"] == "solo":
                check(p["status"] == "offline" and p["offline"] == [victim] and
                      p["isr"] == [victim], "offline solo partition %s" % p)
                offline.add(key)
            else:
                check(p["status"] == "under-replicated" and p["offline"] == [victim] and
                      len(p["isr"]) == 2 and p["leader"] in p["isr"], "replicated partition %s"
                      % p)
                urp.add(key)
        check(len(urp) == 7, "all 7 replicated partitions under-replicated: %s" % urp)
        check(offline, "no solo partition on broker %d: %s" % (victim, parts))

        def keys(out):
            _, ps = parse_describe(out)
            return set("%s partition %d" % (p["topic"], p["partition"]) for p in ps)
        check(keys(cli(order, "topics", "describe", "--under-replicated").stdout) == urp,
              "--under-replicated")
        check(keys(cli(order, "topics", "describe", "--offline").stdout) == offline, "--offline")
        check(keys(cli(order, "topics", "describe", "--under-replicated", "--offline").stdout) ==
              urp | offline, "both filters")
        check(keys(cli(order, "topics", "describe", "solo", "--under-replicated").stdout) ==
              set(), "--under-replicated of solo")
        d = parse_cluster(cli(order, "cluster", "describe").stdout)
        listed = lambda lines: set(l.split(":")[0] for l in lines)  # noqa: E731,E741
        check(d["urp_count"] == len(urp) and listed(d["urp"]) == urp,
              "cluster describe under-replicated %s, expected %s" % (d["urp"], urp))
        check(d["offline_count"] == len(offline) and listed(d["offline"]) == offline,
              "cluster describe offline %s, expected %s" % (d["offline"], offline))
        log("step 5: %d under-replicated, offline %s" % (len(urp), sorted(offline)))

        # 6. the broker returns.
        cl.broker(victim).start()

        def back():
            _, ps = parse_describe(cli(order, "topics", "describe", "solo").stdout)
            mine = [p for p in ps if p["replicas"] == [victim]]
            return mine if all(p["leader"] == victim for p in mine) else None
        for p in wait_for("the solo partitions on %d led again" % victim, back, BOUND, 0.5):
            check(p["status"] == "ok" and p["isr"] == [victim] and p["offline"] == [],
                  "solo partition back: %s" % p)
        d = parse_cluster(cli(order, "cluster", "describe").stdout)
        check(d["offline_count"] == 0 and sorted(d["brokers"]) == ids,
              "cluster describe after the return: %s" % d)
        log("step 6: broker %d back, leading its solo partitions" % victim)


def main():
    rc = 0
    try:
        broker_available()
        local_backend()
        cluster()
    except Skip as e:
        log("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        rc = 1
    if rc == 0:
        log("PASS")
    return rc


if __name__ == "__main__":
    sys.exit(main())
