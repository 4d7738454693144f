# SPDX-License-Identifier: Apache-2.0
"""The Jepsen-style checker on a cluster (Tier A): no acknowledged write lost.

Three collectors and one ZooKeeper on loopback (session timeout 6 s,
replica.lag.time.max.ms 10 s), one topic with 3 partitions, replication
factor 3 and min.insync.replicas 2. Four idempotent acks=all
confluent-kafka producers write unique values and two consumers read
everything, while the nemesis runs (by default, Tier A): 20 leader
SIGKILLs (every fourth one the controller's), 10 SIGSTOP pauses of a
leader longer than the session timeout, ZooKeeper SIGKILLed and started
again, and one rolling SIGTERM restart of every broker. After healing,
every partition is read from its start; then every broker stops and
tributary-replica-check compares their data dirs up to the high watermark.

lib/checker.py judges the history: 0 acknowledged writes lost, 0 offsets
holding two values, 0 duplicates, 0 per-producer order inversions, 0
stale reads, 0 replica divergences (and no definitely failed or unknown
value visible, and a complete final read). It prints a summary with the
unavailability after each kind of fault (p50/p99 of the gap between the
last acknowledgement before a fault and the first after it, on the
partition that waited longest), and writes the verdict as JSON (--json,
default $TRIB_BUILD_DIR/checker/<mode>-<seed>.json). Exit 1 on any
anomaly or when the cluster did not heal after a fault.

    0660-cluster-checker.py [--leader-kills N] [--controller-every K]
        [--pauses N] [--zk-restarts N] [--zk-pauses N] [--rolling N]
        [--power-losses N]
        [--producers N] [--consumers N] [--partitions N] [--rate PER_S]
        [--seed S] [--mode cluster|single] [--json PATH]

--mode single runs the same workload on one collector (local backend,
replication factor 1) with the same faults where they apply: it checks the
workload itself, and a single node's durability under kills and power loss.
The chaos label runs it with 100 leader kills, 100 pauses, 20 power losses
(files rolled back to their last fdatasync by tests/powerloss), 3 ZooKeeper
restarts, 3 ZooKeeper pauses past the session timeout and 2 rolling restarts.
"""
import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import checker  # noqa: E402
from queue_workload import Run, Schedule  # noqa: E402
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("cluster", "single"), default="cluster")
    ap.add_argument("--leader-kills", type=int, default=20)
    ap.add_argument("--controller-every", type=int, default=4)
    ap.add_argument("--pauses", type=int, default=10)
    ap.add_argument("--zk-restarts", type=int, default=1)
    ap.add_argument("--zk-pauses", type=int, default=0)
    ap.add_argument("--rolling", type=int, default=1)
    ap.add_argument("--power-losses", type=int, default=0)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rate", type=float, default=50.0, help="values per second per producer")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("TRIB_CHECKER_SEED", "660")))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    sched = Schedule(leader_kills=args.leader_kills, controller_every=args.controller_every,
                     pauses=args.pauses, zk_restarts=args.zk_restarts, rolling=args.rolling,
                     power_losses=args.power_losses, zk_pauses=args.zk_pauses)
    run = Run(mode=args.mode, schedule=sched, seed=args.seed, producers=args.producers,
              consumers=args.consumers, partitions=args.partitions, rate=args.rate)
    out = args.json or os.path.join(os.environ.get("TRIB_BUILD_DIR", "."), "checker",
                                    "%s-%d.json" % (args.mode, args.seed))
    t0 = time.monotonic()
    try:
        res = run.execute()
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        if run.history.events:
            res = checker.analyze(run.history.events)
            print(checker.summary_text(res))
        return 1
    res["seconds"] = round(time.monotonic() - t0, 1)
    res["args"] = vars(args)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    with open(out[:-5] + ".history.jsonl" if out.endswith(".json") else out + ".history", "w") as f:
        for e in run.history.events:
            f.write(json.dumps(e) + "\n")
    print(checker.summary_text(res))
    log("%d faults in %.0f s; verdict in %s" % (len(res["faults_run"]), res["seconds"], out))
    if res["unhealed"]:
        log("FAIL: the cluster did not heal after: %s" % ", ".join(res["unhealed"]))
        return 1
    if res["counts"]["acknowledged"] < 100:
        log("FAIL: only %d writes acknowledged: the workload did not run"
            % res["counts"]["acknowledged"])
        return 1
    if not res["ok"]:
        log("FAIL: anomalies: %s" % {k: v for k, v in res["anomaly_counts"].items() if v})
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
