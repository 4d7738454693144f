#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The collector's include structure (issue 19): a module's private
header (<name>_int.h) is included only inside its module, and the include
graph between the collector's modules (collector/<dir>/, and each
top-level file: main.c, conf.c/conf.h) has no cycle. The group
coordinator and the sink host reach the server only through the
interfaces they are given (group/group.h's coll_group_host_t,
sinks/sinks.h's coll_sinks_env_t), so neither includes server_int.h and
no cycle runs through group/ or sinks/.

KNOWN lists what is still open elsewhere (the replica fetcher reads the
server's partition runtime); anything else fails. Prints the graph and
what it finds; exits 1 on a violation. With a directory argument, checks
that tree instead of ../collector (another checkout, to see it fail)."""
import collections
import os
import re
import sys

INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# (including file, included header) pairs still allowed, and module
# cycles still allowed (as sets): the replica fetcher (replica/) and the
# leader side (server/replica.c) share the server's partition runtime.
KNOWN_PRIVATE = {("replica/fetcher.c", "server/server_int.h")}
KNOWN_CYCLES = [{"replica", "server"}]


def module(rel):
    parts = rel.split(os.sep)
    if len(parts) > 1:
        return parts[0]
    return os.path.splitext(parts[0])[0]


def check(root):
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f.endswith((".c", ".h"))]
    bad, notes = [], []
    edges = collections.defaultdict(set)
    why = {}
    seen_private = set()
    for f in sorted(files):
        rel = os.path.relpath(f, root)
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for name in INC.findall(text):
            cands = [os.path.normpath(os.path.join(os.path.dirname(f), name)),
                     os.path.join(root, name)]
            tgt = next((c for c in cands if os.path.exists(c)), None)
            if tgt is None:
                continue  # common/'s public headers, generated code, system
            trel = os.path.relpath(tgt, root)
            src_m, tgt_m = module(rel), module(trel)
            if os.path.basename(trel).endswith("_int.h") and src_m != tgt_m:
                if (rel, trel) in KNOWN_PRIVATE:
                    seen_private.add((rel, trel))
                else:
                    bad.append("%s includes %s, the private header of %s/" % (rel, trel, tgt_m))
            if src_m != tgt_m:
                edges[src_m].add(tgt_m)
                why.setdefault((src_m, tgt_m), "%s -> %s" % (rel, trel))
    for k in sorted(KNOWN_PRIVATE - seen_private):
        notes.append("%s no longer includes %s: drop it from KNOWN_PRIVATE" % k)

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
    cycles_seen = []
    for comp in sccs:
        if len(comp) < 2:
            continue
        cs = set(comp)
        arrows = ["%s (%s)" % (a + " -> " + b, why[(a, b)])
                  for a in sorted(cs) for b in sorted(edges[a] & cs)]
        if any(cs <= k for k in KNOWN_CYCLES):
            cycles_seen.append(cs)
            notes.append("known include cycle: %s: %s" % (" <-> ".join(sorted(cs)),
                                                          "; ".join(arrows)))
        else:
            bad.append("include cycle: %s: %s" % (" <-> ".join(sorted(cs)), "; ".join(arrows)))
    for k in KNOWN_CYCLES:
        if not any(k <= c for c in cycles_seen) and \
                not any(k <= set(c) for c in sccs if len(c) > 1):
            notes.append("the cycle %s is gone: drop it from KNOWN_CYCLES"
                         % " <-> ".join(sorted(k)))
    for m in sorted(edges):
        print("%-8s -> %s" % (m, ", ".join(sorted(edges[m]))))
    for n in notes:
        print("note: " + n)
    for b in bad:
        print("error: " + b)
    print("%d modules, %d problems" % (len(nodes), len(bad)))
    return 1 if bad else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "collector")
    return check(os.path.normpath(root))


if __name__ == "__main__":
    sys.exit(main())
