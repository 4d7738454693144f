# SPDX-License-Identifier: Apache-2.0
"""tributary-replica-check finds what differs between copies of a partition.

A collector stores a topic (2 partitions, 16 KiB segments so each holds
several segment files) written by an idempotent confluent-kafka producer
(so batches carry producer ids and sequences) and is stopped cleanly, so
replication-offset-checkpoint holds each partition's high watermark. Its
data dir is copied three times, as if three brokers held replicas, and:

  identical copies                      exit 0, JSON "identical" for both
  one byte of a record flipped below
    the high watermark                  exit 1, kind corrupt, at that batch
  a copy cut below the high watermark   exit 1, kind missing
  a batch's leader epoch changed        exit 1, kind epoch
  a torn batch at a copy's end and
    extra batches above the high
    watermark of another copy           exit 0 (only committed data is
                                        compared); --upto end: exit 1, missing
  a segment file in the middle removed  exit 1, kind missing
  a lower --upto than the damage        exit 0
  a missing directory, one directory,
    or no common partition              exit 2

Each damage is made in a fresh set of copies; files are read only, never
written by the tool (their checksums do not change).
"""
import glob
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import BIN_DIR, TestFailure, log, run_test  # noqa: E402

TOOL = os.path.join(BIN_DIR, "tributary-replica-check")
TOPIC = "rc"
N = 3000


def produce(c):
    from confluent_kafka import Producer
    c.cli("topics", "create", "--topic", TOPIC, "--partitions", "2",
          "--config", "segment.bytes=16384", "--config", "segment.index.bytes=4096")
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "batch.num.messages": 20})
    errors = []
    for i in range(N):
        p.produce(TOPIC, value=b"value-%06d-" % i + b"x" * (i % 50), partition=i % 2,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    if p.flush(60) != 0 or errors:
        raise TestFailure("produce: %d left, errors %s" % (p.flush(0), errors[:3]))


def run(*args):
    p = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def check_json(dirs, want_rc, want_kind=None, extra=()):
    rc, out, err = run("--json", "--topic", TOPIC, *extra, *dirs)
    if rc != want_rc:
        raise TestFailure("exit %d, expected %d\nstdout: %s\nstderr: %s" % (rc, want_rc, out, err))
    rep = json.loads(out)
    if rep["exit"] != rc:
        raise TestFailure("JSON says exit %s, the tool exited %d" % (rep["exit"], rc))
    kinds = [p["divergence"]["kind"] for p in rep["partitions"] if p["status"] == "diverged"]
    if want_kind is None and kinds:
        raise TestFailure("divergence reported: %s" % kinds)
    if want_kind is not None and kinds != [want_kind]:
        raise TestFailure("divergence kinds %s, expected [%s]\n%s" % (kinds, want_kind, out))
    return rep


def diverged(rep):
    """The one diverged partition's entry."""
    return [p for p in rep["partitions"] if p["status"] == "diverged"][0]


def segments(d, part):
    return sorted(glob.glob(os.path.join(d, "%s-%d" % (TOPIC, part), "*.log")))


def batches(path):
    """[(position, size, base offset)] of a segment file."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        out.append((pos, 12 + length, base))
        pos += 12 + length
    return out


def hw_of(d, part):
    with open(os.path.join(d, "replication-offset-checkpoint")) as f:
        for line in f.read().splitlines()[2:]:
            t, p, o = line.rsplit(" ", 2)
            if t == TOPIC and int(p) == part:
                return int(o)
    raise TestFailure("no high watermark for %s-%d in %s" % (TOPIC, part, d))


def set_hw(d, part, hw):
    path = os.path.join(d, "replication-offset-checkpoint")
    with open(path) as f:
        lines = f.read().splitlines()
    out = lines[:2]
    for line in lines[2:]:
        t, p, _o = line.rsplit(" ", 2)
        out.append("%s %s %d" % (t, p, hw) if t == TOPIC and int(p) == part else line)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def tree_digest(dirs):
    h = hashlib.sha256()
    for d in dirs:
        for root, _ds, files in sorted(os.walk(d)):
            for name in sorted(files):
                with open(os.path.join(root, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return h.hexdigest()


def main(c):
    if not os.access(TOOL, os.X_OK):
        raise TestFailure("%s is not built" % TOOL)
    produce(c)
    c.stop("TERM")
    base = os.path.join(c.tmp, "copies")

    def fresh():
        shutil.rmtree(base, ignore_errors=True)
        dirs = []
        for i in range(3):
            d = os.path.join(base, "broker-%d" % i)
            shutil.copytree(c.data, d)
            dirs.append(d)
        return dirs

    dirs = fresh()
    for part in (0, 1):
        if len(segments(dirs[0], part)) < 3:
            raise TestFailure("partition %d has %d segments; the test wants several"
                              % (part, len(segments(dirs[0], part))))
    hw0 = hw_of(dirs[0], 0)
    if hw0 != N // 2:
        raise TestFailure("high watermark of partition 0 is %d, expected %d" % (hw0, N // 2))

    # 1. Identical copies; nothing is written by the tool.
    before = tree_digest(dirs)
    rep = check_json(dirs, 0)
    if len(rep["partitions"]) != 2 or any(p["batches"] < 10 or p["upto"] != N // 2
                                          for p in rep["partitions"]):
        raise TestFailure("identical copies: %s" % rep["partitions"])
    if tree_digest(dirs) != before:
        raise TestFailure("the tool changed the data dirs")
    rc, out, _ = run(*dirs)
    if rc != 0 or "2 partitions compared: 2 identical" not in out:
        raise TestFailure("text output (exit %d): %s" % (rc, out))
    log("identical copies: exit 0, %d + %d batches compared"
        % (rep["partitions"][0]["batches"], rep["partitions"][1]["batches"]))

    # 2. A flipped byte inside a record, in a middle segment.
    seg = segments(dirs[1], 0)[1]
    pos, size, base_off = batches(seg)[2]
    with open(seg, "r+b") as f:
        f.seek(pos + size - 3)
        b = f.read(1)
        f.seek(pos + size - 3)
        f.write(bytes([b[0] ^ 0x10]))
    rep = check_json(dirs, 1, "corrupt")
    div = diverged(rep)["divergence"]
    if div["offset"] != base_off or div["dir"] != dirs[1]:
        raise TestFailure("flipped byte: reported %s, expected offset %d in %s"
                          % (div, base_off, dirs[1]))
    check_json(dirs, 0, extra=("--upto", str(base_off)))
    log("flipped byte at offset %d: corrupt, found; not below --upto %d" % (base_off, base_off))

    # 3. A copy cut below the high watermark (its checkpoint still says hw).
    dirs = fresh()
    seg = segments(dirs[2], 1)[-1]
    pos, size, base_off = batches(seg)[1]
    os.truncate(seg, pos)
    rep = check_json(dirs, 1, "missing")
    div = diverged(rep)["divergence"]
    if div["offset"] != base_off or div["dir"] != dirs[2] or diverged(rep)["partition"] != 1:
        raise TestFailure("truncated tail: reported %s, expected offset %d in %s"
                          % (diverged(rep), base_off, dirs[2]))
    log("copy cut at offset %d below the high watermark: missing, found" % base_off)

    # 4. One batch's partition leader epoch changed (outside the CRC).
    dirs = fresh()
    seg = segments(dirs[0], 1)[0]
    pos, size, base_off = batches(seg)[4]
    with open(seg, "r+b") as f:
        f.seek(pos + 12)
        (epoch,) = struct.unpack(">i", f.read(4))
        f.seek(pos + 12)
        f.write(struct.pack(">i", epoch + 1))
    rep = check_json(dirs, 1, "epoch")
    if diverged(rep)["divergence"]["offset"] != base_off or diverged(rep)["partition"] != 1:
        raise TestFailure("epoch: reported %s, expected partition 1 offset %d"
                          % (diverged(rep), base_off))
    log("leader epoch %d -> %d at offset %d: epoch, found" % (epoch, epoch + 1, base_off))

    # 5. Uncommitted tails differ: copy 0 is cut back to a lower high
    # watermark's batch boundary with a torn batch after it; the others
    # keep everything but record the lower high watermark in one copy.
    dirs = fresh()
    seg = segments(dirs[0], 0)[-1]
    bs = batches(seg)
    pos, size, base_off = bs[len(bs) // 2]
    with open(seg, "rb") as f:
        f.seek(pos)
        part_batch = f.read(size // 2)
    os.truncate(seg, pos)
    with open(seg, "ab") as f:
        f.write(part_batch)
    set_hw(dirs[0], 0, base_off)
    rep = check_json(dirs, 0)
    if rep["partitions"][0]["upto"] != base_off:
        raise TestFailure("bound %s, expected the lowest high watermark %d"
                          % (rep["partitions"][0]["upto"], base_off))
    check_json(dirs, 1, "missing", extra=("--upto", "end"))
    log("differences above the lowest high watermark %d: not reported; with --upto end: missing"
        % base_off)

    # 6. A segment in the middle removed.
    dirs = fresh()
    gone = segments(dirs[1], 0)[1]
    first_missing = batches(gone)[0][2]
    os.unlink(gone)
    rep = check_json(dirs, 1, "missing")
    if diverged(rep)["divergence"]["offset"] != first_missing:
        raise TestFailure("missing segment: reported %s, expected offset %d"
                          % (diverged(rep)["divergence"], first_missing))
    log("segment %s removed: missing at %d, found" % (os.path.basename(gone), first_missing))

    # 7. Errors: exit 2.
    for args, what in (([dirs[0], os.path.join(base, "nope")], "a missing directory"),
                       ([dirs[0]], "one directory"),
                       (["--topic", "other", dirs[0], dirs[1]], "an unknown topic"),
                       (["--upto", "x", dirs[0], dirs[1]], "a bad --upto")):
        rc, out, err = run(*args)
        if rc != 2:
            raise TestFailure("%s: exit %d, expected 2 (%s %s)" % (what, rc, out, err))
    empty = [os.path.join(base, "e1"), os.path.join(base, "e2")]
    for d in empty:
        os.makedirs(d)
    rc, _out, err = run(*empty)
    if rc != 2 or "no partition" not in err:
        raise TestFailure("nothing to compare: exit %d: %s" % (rc, err))
    log("errors: exit 2")


if __name__ == "__main__":
    run_test(main)
