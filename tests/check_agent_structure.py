#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The agent's include structure (issue 19): no file below agent/<dir>/
includes the loop's headers (agent.h, agent_int.h), only agent.c,
metrics.c and spool.c include agent_int.h, and the include graph between
the agent's modules (agent/<dir>/ and each top-level header) has no cycle.
Prints what it finds; exits 1 on a violation."""
import collections
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent")
LOOP = {"agent", "agent_int", "main", "metrics", "spool"}
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module(path):
    parts = os.path.relpath(path, ROOT).split(os.sep)
    if len(parts) > 1:
        return parts[0]
    base = os.path.splitext(parts[0])[0]
    return "agent" if base in LOOP else base


def main():
    files = [os.path.join(d, f) for d, _, fs in os.walk(ROOT) for f in fs
             if f.endswith((".c", ".h"))]
    bad = []
    edges = collections.defaultdict(set)
    for f in sorted(files):
        rel = os.path.relpath(f, ROOT)
        for name in INC.findall(open(f).read()):
            cands = [os.path.normpath(os.path.join(os.path.dirname(f), name)),
                     os.path.join(ROOT, name)]
            tgt = next((c for c in cands if os.path.exists(c)), None)
            if tgt is None:
                continue
            trel = os.path.relpath(tgt, ROOT)
            if os.sep in rel and trel in ("agent.h", "agent_int.h"):
                bad.append("%s includes the loop's %s" % (rel, trel))
            if trel == "agent_int.h" and module(f) != "agent":
                bad.append("%s includes agent_int.h" % rel)
            if module(f) != module(tgt):
                edges[module(f)].add(module(tgt))
    # cycles (Tarjan)
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def strong(v, c=[0]):
        index[v] = low[v] = c[0]
        c[0] += 1
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

    for v in sorted(set(edges) | {t for s in edges.values() for t in s}):
        if v not in index:
            strong(v)
    for comp in sccs:
        if len(comp) > 1:
            bad.append("include cycle: " + " <-> ".join(sorted(comp)))
    for m in sorted(edges):
        print("%-12s -> %s" % (m, ", ".join(sorted(edges[m]))))
    for b in bad:
        print("error: " + b)
    print("%d modules, %d problems" % (len(set(edges) | {t for s in edges.values() for t in s}),
                                       len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
