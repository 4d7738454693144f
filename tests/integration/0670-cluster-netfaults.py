# SPDX-License-Identifier: Apache-2.0
"""Tier B: the checker's workload through network faults (root only).

Three ZooKeeper servers and three collectors, each in its own network
namespace on one bridge (lib/netns.py); one topic with 3 partitions,
replication factor 3, min.insync.replicas 2; the same producers,
consumers, final read, replica comparison and verdict as 0660
(lib/checker.py). Faults, each held for 1.5 session timeouts and then
healed (nftables rules in the node's namespace), in a seeded order:

  cut-leader-zk         a partition leader cut from ZooKeeper only
  cut-leader-followers  a partition leader cut from its followers only
  split                 {that leader, one ZooKeeper server} / the rest
  oneway                the leader's packets to every other node dropped

Result expected: 0 of every anomaly (an isolated minority leader
acknowledges nothing: what it acknowledged would be lost); exit 1 on any,
or when the cluster does not heal. A producer whose client raises a fatal
error is replaced by a new one and counted, not judged (checker.py): its
writes in flight are indeterminate. A leader that lost its ZooKeeper
session takes no writes and answers its parked ones NOT_LEADER_OR_FOLLOWER
(0671), so the fatal OUT_OF_ORDER_SEQUENCE_NUMBER librdkafka 2.0 raised
after a split or a cut from ZooKeeper (a client sent back to the old
leader by its stale metadata, or one that took the old leader's
REQUEST_TIMED_OUT for "written") no longer comes. Needs root, ip and nft:
otherwise it is skipped with the reason.

    0670-cluster-netfaults.py [--rounds N] [--seed S] [--json PATH]
"""
import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import checker  # noqa: E402
import netns  # noqa: E402
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402

KINDS = ["cut-leader-zk", "cut-leader-followers", "split", "oneway"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1, help="each fault kind this many times")
    ap.add_argument("--seed", type=int, default=670)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    try:
        netns.available()
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    import random
    faults = KINDS * args.rounds
    random.Random(args.seed).shuffle(faults)
    run = netns.NetRun(faults, seed=args.seed)
    out = args.json or os.path.join(os.environ.get("TRIB_BUILD_DIR", "."), "checker",
                                    "netfaults-%d.json" % args.seed)
    t0 = time.monotonic()
    try:
        res = run.execute()
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        if run.history.events:
            print(checker.summary_text(checker.analyze(run.history.events)))
        return 1
    res["seconds"] = round(time.monotonic() - t0, 1)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    with open(out[:-5] + ".history.jsonl" if out.endswith(".json") else out + ".history", "w") as f:
        for e in run.history.events:
            f.write(json.dumps(e) + "\n")
    print(checker.summary_text(res))
    log("%d faults in %.0f s; verdict in %s" % (len(faults), res["seconds"], out))
    if res["unhealed"]:
        log("FAIL: the cluster did not heal after: %s" % ", ".join(res["unhealed"]))
        return 1
    if not res["ok"] or res["counts"]["acknowledged"] < 100:
        log("FAIL: anomalies %s, %d acknowledged"
            % ({k: v for k, v in res["anomaly_counts"].items() if v},
               res["counts"]["acknowledged"]))
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
