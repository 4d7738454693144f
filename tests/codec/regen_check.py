#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""codec.regen: regenerate the Kafka codec into a scratch folder and diff it
against the committed common/kafka/gen. Exit 0 when identical, 1 on any
difference (printed as a unified diff), 77 (skip) when the schemas are absent.
"""

import argparse
import difflib
import os
import shutil
import subprocess
import sys

SKIP = 77


def listing(d):
    return sorted(f for f in os.listdir(d) if f.endswith((".c", ".h")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--schemas", required=True)
    ap.add_argument("--tmp", required=True)
    args = ap.parse_args()
    if not os.path.isdir(args.schemas):
        print("codec.regen: SKIP: no schemas at %s" % args.schemas)
        return SKIP
    committed = os.path.join(args.repo, "common", "kafka", "gen")
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    gen = os.path.join(args.repo, "tools", "codegen", "kafka_codegen.py")
    rc = subprocess.call([sys.executable, gen, "--schemas", args.schemas, "--out", args.tmp])
    if rc != 0:
        print("codec.regen: the generator failed (%d)" % rc)
        return 1
    fresh, old = listing(args.tmp), listing(committed) if os.path.isdir(committed) else []
    bad = 0
    for name in sorted(set(fresh) - set(old)):
        print("codec.regen: missing from common/kafka/gen: %s" % name)
        bad += 1
    for name in sorted(set(old) - set(fresh)):
        print("codec.regen: stale in common/kafka/gen: %s" % name)
        bad += 1
    shown = 0
    for name in sorted(set(fresh) & set(old)):
        with open(os.path.join(args.tmp, name), encoding="utf-8") as fh:
            a = fh.read().splitlines(keepends=True)
        with open(os.path.join(committed, name), encoding="utf-8") as fh:
            b = fh.read().splitlines(keepends=True)
        if a != b:
            bad += 1
            if shown < 5:
                sys.stdout.writelines(difflib.unified_diff(
                    b, a, "common/kafka/gen/" + name, "regenerated/" + name, n=2))
                shown += 1
    if bad:
        print("codec.regen: %d file(s) differ; run: python3 tools/codegen/kafka_codegen.py" % bad)
        return 1
    print("codec.regen: %d generated files match" % len(fresh))
    return 0


if __name__ == "__main__":
    sys.exit(main())
