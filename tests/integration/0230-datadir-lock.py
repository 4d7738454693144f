# SPDX-License-Identifier: Apache-2.0
"""0230: a second collector on a live data directory refuses to start.

A collector runs on <tmp>/data with records in it. A second one started on
the same directory (other ports) must exit non-zero, naming the lock
holder (the first one's pid and <data>/.lock) on stderr, and leave the
directory exactly as it was: every path, size, mtime and content byte is
snapshotted before and compared after. The first collector keeps serving
(its records are still readable) and stops cleanly; a collector started
after it stopped takes the directory over.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import COLLECTOR, TestFailure, log, run_test  # noqa: E402


def snapshot(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            digest = None
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def second(c):
    """Starts a second collector on c's data directory. Returns (exit status, stderr); if it
    became ready instead of exiting, it is stopped and the status is "ran"."""
    ready = os.path.join(c.tmp, "ready2")
    errpath = os.path.join(c.tmp, "second.log")
    with open(errpath, "wb") as ef:
        p = subprocess.Popen([COLLECTOR, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                              "--data-dir", c.data, "--ready-file", ready],
                             stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while p.poll() is None and not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        status = p.poll()
        if status is None:
            status = "ran"
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    with open(errpath) as f:
        return status, f.read()


def main(c):
    c.cli("topics", "create", "--topic", "locked", "--partitions", "2")
    c.cli("produce", "--topic", "locked", "--key-separator", " ",
          input="".join("k%d v%d\n" % (i, i) for i in range(100)))
    # The collector writes its first checkpoints soon after it starts, and
    # then (checkpoint_interval 1h, below) only when it stops.
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(c.data, "replication-offset-checkpoint")):
        if time.monotonic() > deadline:
            raise TestFailure("the collector wrote no checkpoint within 30 s")
        time.sleep(0.05)
    # The first checkpoint pass writes several files (the partitions'
    # checkpoints after replication-offset-checkpoint): wait until the
    # directory is quiet, two snapshots a second apart alike, so that
    # only the second collector could change it from here on.
    before = snapshot(c.data)
    while True:
        time.sleep(1)
        again = snapshot(c.data)
        if again == before:
            break
        if time.monotonic() > deadline:
            raise TestFailure("the collector's data directory kept changing for 30 s")
        before = again

    status, err = second(c)
    log("second collector: exit %s, stderr: %s" % (status, err.strip()))
    after = snapshot(c.data)
    if status == "ran" or status == 0:
        raise TestFailure("a second collector on a live data directory %s"
                          % ("started" if status == "ran" else "exited 0"))
    if str(c.proc.pid) not in err or os.path.join(c.data, ".lock") not in err:
        raise TestFailure("the refusal does not name the holder (pid %d, %s/.lock): %r"
                          % (c.proc.pid, c.data, err))
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        raise TestFailure("the second collector changed the data directory: %s" % [(k, before.get(k), after.get(k)) for k in changed[:20]])
    with open(os.path.join(c.data, ".lock")) as f:
        if f.read().strip() != str(c.proc.pid):
            raise TestFailure(".lock does not hold the collector's pid %d" % c.proc.pid)

    # The first one still serves what it stored.
    out = c.cli("consume", "--topic", "locked", "--from-beginning", "--max", "100",
                "--timeout-ms", "20000").stdout
    if len(out.splitlines()) != 100:
        raise TestFailure("the first collector serves %d of 100 records after the refusal"
                          % len(out.splitlines()))

    # Once it stops, the directory is free again.
    c.stop("TERM")
    c.start()
    with open(os.path.join(c.data, ".lock")) as f:
        if f.read().strip() != str(c.proc.pid):
            raise TestFailure(".lock does not hold the new collector's pid %d" % c.proc.pid)


# The first collector writes its checkpoints every checkpoint_interval (5 s
# by default), which would race with the before/after comparison: here it
# writes them once after it starts (waited for) and then when it stops.
CONFIG_DIR = tempfile.mkdtemp(prefix="trib-0230-conf.")
CONFIG = os.path.join(CONFIG_DIR, "collector.yaml")
with open(CONFIG, "w") as f:
    f.write("storage:\n  checkpoint_interval: 1h\n")
try:
    run_test(main, extra_args=("--config", CONFIG))
finally:
    shutil.rmtree(CONFIG_DIR, ignore_errors=True)
