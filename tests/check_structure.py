#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The include structure of agent/, collector/ and common/ (issue 19).

For each tree: the include graph between its modules has no cycle, and a
module's private header (<name>_int.h) is included only inside its module.

Modules:
- collector/: each directory (cluster/, server/, ...) and each top-level
  file (main.c, conf.c/conf.h). The group coordinator, the sink host and
  the replica fetchers reach the server only through the interfaces they
  are given (coll_group_host_t, coll_sinks_env_t, coll_fetch_host_t).
- agent/: each directory (input/, output/, ...) and each top-level
  header; the loop (agent.c, main.c, metrics.c, spool.c and their
  agent.h, agent_int.h) is one module, and no file below a directory
  includes the loop's headers.
- common/: config/ and kafka/ (with the public headers they implement:
  config.h, and kafka.h, kclient.h, record.h, compress.h, kafka_error.h),
  and each other top-level file with its public header
  include/tributary/<name>.h. common/ includes nothing of agent/ or
  collector/.

Usage: check_structure.py agent|collector|common [DIR]: DIR checks that
tree instead (another checkout, to see it fail). Prints the graph and what
it finds; exits 1 on a violation."""
import collections
import os
import re
import sys

INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

AGENT_LOOP = {"agent", "agent_int", "main", "metrics", "spool"}
COMMON_HEADERS = {"config": "config", "kafka": "kafka", "kclient": "kafka", "record": "kafka",
                  "compress": "kafka", "kafka_error": "kafka"}


def module(tree, rel):
    parts = rel.split(os.sep)
    base = os.path.splitext(parts[-1])[0]
    if tree == "common" and parts[:2] == ["include", "tributary"]:
        return COMMON_HEADERS.get(base, base)
    if len(parts) > 1:
        return parts[0]
    if tree == "agent" and base in AGENT_LOOP:
        return "agent"
    return base


def resolve(root, tree, f, name):
    cands = [os.path.normpath(os.path.join(os.path.dirname(f), name)), os.path.join(root, name)]
    if tree == "common":
        cands.append(os.path.join(root, "include", name))
    return next((c for c in cands if os.path.exists(c)), None)


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    nodes = sorted(set(edges) | {t for s in edges.values() for t in s})
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(comp)

    for v in nodes:
        if v not in index:
            strong(v)
    return nodes, [set(c) for c in sccs if len(c) > 1]


def check(tree, root):
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f.endswith((".c", ".h"))]
    bad = []
    edges = collections.defaultdict(set)
    why = {}
    for f in sorted(files):
        rel = os.path.relpath(f, root)
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for name in INC.findall(text):
            if tree == "common" and name.split("/")[0] in ("agent", "collector"):
                bad.append("%s includes %s: common/ serves the agent and the collector" % (rel, name))
                continue
            tgt = resolve(root, tree, f, name)
            if tgt is None:
                continue  # common/'s public headers (from agent/, collector/), generated, system
            trel = os.path.relpath(tgt, root)
            src_m, tgt_m = module(tree, rel), module(tree, trel)
            if os.path.basename(trel).endswith("_int.h") and src_m != tgt_m:
                bad.append("%s includes %s, the private header of %s" % (rel, trel, tgt_m))
            if tree == "agent" and os.sep in rel and trel in ("agent.h", "agent_int.h"):
                bad.append("%s includes the loop's %s" % (rel, trel))
            if src_m != tgt_m:
                edges[src_m].add(tgt_m)
                why.setdefault((src_m, tgt_m), "%s -> %s" % (rel, trel))
    nodes, loops = cycles(edges)
    for cs in loops:
        arrows = ["%s -> %s (%s)" % (a, b, why[(a, b)])
                  for a in sorted(cs) for b in sorted(edges[a] & cs)]
        bad.append("include cycle: %s: %s" % (" <-> ".join(sorted(cs)), "; ".join(arrows)))
    for m in sorted(edges):
        print("%-12s -> %s" % (m, ", ".join(sorted(edges[m]))))
    for b in bad:
        print("error: " + b)
    print("%s: %d modules, %d problems" % (tree, len(nodes), len(bad)))
    return 1 if bad else 0


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("agent", "collector", "common"):
        sys.stderr.write("usage: check_structure.py agent|collector|common [DIR]\n")
        return 2
    tree = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", tree)
    return check(tree, os.path.normpath(root))


if __name__ == "__main__":
    sys.exit(main())
