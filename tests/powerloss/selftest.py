#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks libpowerloss.so and rollback.py against the model they claim
(powerloss.c's opening comment): a child process runs under the shim,
changes files and SIGKILLs itself; rollback.py rebuilds the tree; the
test compares it with what the model says must be there. Cases: data
past the last fdatasync is lost, a truncation after it is undone, a new
file whose directory was never synced is gone, rename(tmp, name) without
fsync(dir) leaves the old contents, an unsynced unlink is undone, a new
subdirectory is durable only with its parent, shared-mapping stores count
only once fdatasync'd, write-only descriptors, four threads appending and
syncing at once, a restart without a rollback continuing the journal,
and --torn keeping an appended prefix.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

BUILD = os.environ.get("TRIB_BUILD_DIR",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
LIB = os.path.join(BUILD, "tests", "libpowerloss.so")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rollback  # noqa: E402

failures = []


def check(what, cond):
    print("%s: %s" % ("ok  " if cond else "FAIL", what), file=sys.stderr)
    if not cond:
        failures.append(what)


def run_child(code, tmp):
    """Runs code in a child under the shim; it ends by SIGKILLing itself."""
    env = dict(os.environ, LD_PRELOAD=LIB, POWERLOSS_DIR=os.path.join(tmp, "shadow"),
               POWERLOSS_ROOT=os.path.join(tmp, "root"))
    prog = "import os, mmap, threading, signal\nR = %r\n" % os.path.join(tmp, "root") + code \
        + "\nos.kill(os.getpid(), signal.SIGKILL)\n"
    p = subprocess.run([sys.executable, "-c", prog], env=env, timeout=60)
    if p.returncode != -signal.SIGKILL:
        raise SystemExit("child ended with %s, not SIGKILL" % p.returncode)


def read(tmp, name):
    p = os.path.join(tmp, "root", name)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


def main():
    if not os.path.exists(LIB):
        raise SystemExit("%s is not built" % LIB)
    tmp = tempfile.mkdtemp(prefix="trib-powerloss.")
    try:
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        # The starting state is durable (the first process copies it in).
        for name, data in (("old", b"old"), ("gone", b"keep me"), ("trunc", b"0123456789")):
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        run_child(r'''
def w(name, data, mode="ab", sync=True):
    fd = os.open(os.path.join(R, name), os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC), 0o644)
    os.write(fd, data)
    if sync:
        os.fdatasync(fd)
    os.close(fd)
def dsync(d=R):
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
w("a", b"synced")
w("b", b"never durable name")
dsync()
w("a", b"+lost", sync=False)
w("b", b"-late")
w("c", b"dir never synced")
w("old.tmp", b"new", mode="wb")
os.rename(os.path.join(R, "old.tmp"), os.path.join(R, "old"))
os.unlink(os.path.join(R, "gone"))
fd = os.open(os.path.join(R, "trunc"), os.O_RDWR)
os.ftruncate(fd, 3)
os.close(fd)
os.mkdir(os.path.join(R, "sub"))
w("sub/x", b"in a new dir")
dsync(os.path.join(R, "sub"))
# shared mapping: the first store is synced, the second is not
fd = os.open(os.path.join(R, "m"), os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 8)
m = mmap.mmap(fd, 8)
m[0:4] = b"SYNC"
os.fdatasync(fd)
m[4:8] = b"LOST"
# a write-only descriptor
fd2 = os.open(os.path.join(R, "wo"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd2, b"write-only")
os.fsync(fd2)
os.write(fd2, b" and more")
# four threads, each appending and syncing its own file
acked = {}
def writer(i):
    fd = os.open(os.path.join(R, "t%d" % i), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for n in range(200):
        os.write(fd, b"%d\n" % n)
        if n % 7 == 0:
            os.fdatasync(fd)
            acked[i] = n
    os.write(fd, b"tail\n")
ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
dsync()
w("a", b"+after dir sync, lost", sync=False)
with open(os.path.join(R, "..", "acked"), "w") as f:
    f.write(repr(acked))
''', tmp)
        summary = rollback.rollback(os.path.join(tmp, "shadow"))
        print(summary, file=sys.stderr)
        check("a keeps only its synced data", read(tmp, "a") == b"synced")
        check("b, synced before the directory was, is back with its later synced data",
              read(tmp, "b") == b"never durable name-late")
        check("c, whose directory entry was synced later, has its synced data",
              read(tmp, "c") == b"dir never synced")
        check("rename over old made durable by the later dir sync", read(tmp, "old") == b"new")
        check("old.tmp is gone", read(tmp, "old.tmp") is None)
        check("the unlink of gone was made durable by the later dir sync",
              read(tmp, "gone") is None)
        check("trunc: the truncation was never synced", read(tmp, "trunc") == b"0123456789")
        check("sub exists (the root was synced after mkdir)", os.path.isdir(os.path.join(root, "sub")))
        check("sub/x kept", read(tmp, "sub/x") == b"in a new dir")
        check("the synced mmap store is kept, the later one lost",
              read(tmp, "m") == b"SYNC\0\0\0\0")
        check("a write-only descriptor's sync is copied", read(tmp, "wo") == b"write-only")
        with open(os.path.join(tmp, "acked")) as f:
            acked = eval(f.read())
        for i in range(4):
            want = b"".join(b"%d\n" % n for n in range(acked[i] + 1))
            check("thread file t%d holds exactly what its last fdatasync covered" % i,
                  read(tmp, "t%d" % i) == want)
        check("the shadow dir is emptied", os.listdir(os.path.join(tmp, "shadow")) == [])

        # Second run: nothing synced at the directory level. The baseline is
        # the rolled-back tree; a file created now vanishes, an unsynced rename
        # is undone, and a new subdirectory is gone with everything in it.
        run_child(r'''
fd = os.open(os.path.join(R, "new"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x"); os.fsync(fd); os.close(fd)
with open(os.path.join(R, "old.tmp"), "wb") as f:
    f.write(b"newer"); f.flush(); os.fsync(f.fileno())
os.rename(os.path.join(R, "old.tmp"), os.path.join(R, "old"))
os.mkdir(os.path.join(R, "sub2"))
fd = os.open(os.path.join(R, "sub2", "y"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"y"); os.fsync(fd); os.close(fd)
fd = os.open(os.path.join(R, "sub2"), os.O_RDONLY | os.O_DIRECTORY); os.fsync(fd)
with open(os.path.join(R, "a"), "ab") as f:
    f.write(b"+unsynced")
''', tmp)
        # A restart without rollback continues the journal: nothing synced here.
        run_child(r'''
with open(os.path.join(R, "a"), "ab") as f:
    f.write(b"+second process")
''', tmp)
        rollback.rollback(os.path.join(tmp, "shadow"))
        check("a new file whose directory was never synced is gone", read(tmp, "new") is None)
        check("an unsynced rename over old is undone", read(tmp, "old") == b"new")
        check("the synced new file behind it is gone", read(tmp, "old.tmp") is None)
        check("a subdirectory whose parent was never synced is gone",
              not os.path.exists(os.path.join(root, "sub2")))
        check("appends of two processes without a sync are lost (one journal)",
              read(tmp, "a") == b"synced")

        # --torn keeps a prefix of unsynced appends, never more than was written.
        run_child(r'''
with open(os.path.join(R, "a"), "ab") as f:
    f.write(b"0123456789" * 100)
''', tmp)
        st = rollback.rollback(os.path.join(tmp, "shadow"), torn_seed=7)[os.path.realpath(root)]
        a = read(tmp, "a")
        check("--torn keeps a prefix of the appended bytes",
              a.startswith(b"synced") and (b"synced" + b"0123456789" * 100).startswith(a)
              and st["torn_bytes"] == len(a) - len(b"synced"))
    finally:
        if failures:
            print("kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAIL: %d checks" % len(failures), file=sys.stderr)
        return 1
    print("PASS", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
