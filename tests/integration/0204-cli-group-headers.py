# SPDX-License-Identifier: Apache-2.0
"""CLI 0204: common options before the command, consume --group and
--print-headers, against a collector.

- `tributary -b HOST:PORT topics create|list` (the common option before the
  command) works, as does `--bootstrap` after it;
- 40 records with headers (and 5 without) go into 3 partitions
  (confluent-kafka);
- `tributary consume --group g --from-beginning --exit-at-end` prints all
  45 and commits: `groups describe g` shows lag 0 on every partition;
- 15 more records; the same command again prints exactly those 15 (the
  group's committed offsets win over --from-beginning), and a third run
  prints nothing;
- two members of a new group g2 started together split the partitions
  between them: together they print each of the 60 records exactly once;
- `--print-headers --print-key` prints "k1:v1,k2:v2<TAB>KEY<TAB>VALUE", and
  NO_HEADERS for a record without headers.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import CLI, TestFailure, log, run_test  # noqa: E402

TOPIC = "cli.grp"


def tool(*args, check=True):
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise TestFailure("tributary %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                         p.stderr.strip()))
    return p


def produce(bootstrap, start, n, headers=True):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(start, start + n):
        h = [("h1", b"a%d" % i), ("h2", b"b")] if headers else None
        p.produce(TOPIC, key=b"k%d" % i, value=b"v%d" % i, partition=i % 3, headers=h)
    if p.flush(30) != 0:
        raise TestFailure("produce did not finish")


def consume_group(bootstrap):
    p = tool("-b", bootstrap, "consume", "--topic", TOPIC, "--group", "g", "--from-beginning",
             "--exit-at-end", "--timeout-ms", "20000")
    return sorted(p.stdout.split())


def main(c):
    b = c.bootstrap
    tool("-b", b, "topics", "create", "--topic", TOPIC, "--partitions", "3")
    listed = tool("-b", b, "topics", "list").stdout.split()
    if TOPIC not in listed:
        raise TestFailure("`tributary -b X topics list` does not list %s: %r" % (TOPIC, listed))
    if TOPIC not in tool("--bootstrap=" + b, "--request-timeout-ms", "10000", "topics",
                         "list").stdout.split():
        raise TestFailure("--bootstrap=X --request-timeout-ms N before the command failed")
    if TOPIC not in tool("topics", "list", "--bootstrap", b).stdout.split():
        raise TestFailure("--bootstrap after the command no longer works")

    produce(b, 0, 40)
    produce(b, 40, 5, headers=False)
    got = consume_group(b)
    want = sorted("v%d" % i for i in range(45))
    if got != want:
        raise TestFailure("first run with --group read %d records, not the 45: %r"
                          % (len(got), got[:10]))
    desc = tool("-b", b, "groups", "describe", "g").stdout
    log(desc)
    rows = [l.split() for l in desc.splitlines() if l.startswith(TOPIC + " ")]
    if len(rows) != 3 or any(r[4] != "0" for r in rows) or \
            sum(int(r[2]) for r in rows) != 45:
        raise TestFailure("group g did not commit 45 records over 3 partitions:\n%s" % desc)

    produce(b, 45, 15)
    got = consume_group(b)
    if got != sorted("v%d" % i for i in range(45, 60)):
        raise TestFailure("second run with the same group read %r, not the 15 new records" % got)
    got = consume_group(b)
    if got:
        raise TestFailure("third run with the same group read %r, not nothing" % got)

    members = [subprocess.Popen([CLI, "-b", b, "consume", "--topic", TOPIC, "--group", "g2",
                                 "--from-beginning", "--timeout-ms", "8000", "--verbose"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outs = []
    for m in members:
        try:
            out, err = m.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            m.kill()
            m.communicate()
            raise TestFailure("a member of g2 did not stop")
        log("member of g2: exit %d, %d records; %s" % (m.returncode, len(out.split()),
                                                      err.strip().replace("\n", " | ")))
        if m.returncode != 0:
            raise TestFailure("a member of g2 failed: %s" % err)
        outs.append(out.split())
    both = sorted(outs[0] + outs[1])
    if both != sorted("v%d" % i for i in range(60)):
        raise TestFailure("two members of g2 printed %d records (%d distinct), not the 60 once"
                          % (len(both), len(set(both))))

    out = tool("-b", b, "consume", "--topic", TOPIC, "--partition", "0", "--from-beginning",
               "--exit-at-end", "--print-headers", "--print-key").stdout.splitlines()
    if "h1:a0,h2:b\tk0\tv0" not in out:
        raise TestFailure("--print-headers: no 'h1:a0,h2:b<TAB>k0<TAB>v0' line in %r" % out[:5])
    if "NO_HEADERS\tk42\tv42" not in out:
        raise TestFailure("--print-headers: no 'NO_HEADERS<TAB>k42<TAB>v42' in %r" % out)


run_test(main)
