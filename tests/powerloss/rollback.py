#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Rolls watched trees back to what libpowerloss.so recorded as durable.

    rollback.py SHADOW_DIR [--torn SEED] [--keep-journal]

Run it after the process(es) that ran with LD_PRELOAD=libpowerloss.so,
POWERLOSS_DIR=SHADOW_DIR and POWERLOSS_ROOT=... were SIGKILLed (never while
one still runs). Every root named in the journal is emptied and rebuilt
from the durable state: the root's last synced listing, recursively, each
file with the contents of its last sync (empty when its name is durable
but its data never was). The model, and what it leaves out, is described
at the top of powerloss.c.

--torn SEED: also keep, for each file whose current contents extend its
synced contents (appends only), a random prefix of the unsynced part, as
a disk that wrote back some pages before the power went can. Names never
made durable stay gone either way.

Afterwards the shadow dir is emptied, so the next process under the shim
starts a fresh journal with the rolled-back trees as its durable
baseline. Prints one summary line per root on stdout.

Importable (tests put tests/powerloss on sys.path):
    env = shim_env(shadow, [root, ...])      # add to a daemon's environment
    rollback(shadow, torn_seed=None)         # summary dict per root
"""
import os
import random
import shutil
import sys


def library():
    """Path of the built shim: $TRIB_BUILD_DIR/tests/libpowerloss.so."""
    build = os.environ.get("TRIB_BUILD_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
    return os.path.join(build, "tests", "libpowerloss.so")


def shim_env(shadow, roots, base=None):
    """An environment that runs a program under the shim, watching roots.

    ASan's runtime wants to come first in the preload list; the sanitized
    daemons still run (the shim defines none of the functions ASan wraps).
    """
    lib = library()
    if not os.path.exists(lib):
        raise FileNotFoundError("%s is not built" % lib)
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = lib
    env["POWERLOSS_DIR"] = shadow
    env["POWERLOSS_ROOT"] = ":".join(roots)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "verify_asan_link_order=0"
    return env


def _read_journal(shadow):
    path = os.path.join(shadow, "journal")
    with open(path, "rb") as f:
        data = f.read()
    # A process killed mid-write leaves at most one partial last line.
    lines = data.split(b"\n")
    if lines and lines[-1] != b"":
        lines = lines[:-1]
    return [l.decode("utf-8", "surrogateescape") for l in lines if l]


def _replay(shadow):
    roots = {}  # path -> (dev, ino)
    gen = {}  # (dev, ino) -> generation
    content = {}  # (dev, ino, gen) -> (mode, blob)
    listing = {}  # (dev, ino, gen) -> [(name, (dev, ino, gen), type)]
    for line in _read_journal(shadow):
        kind = line[0]
        if kind == "R":
            _, dev, ino, path = line.split(" ", 3)
            roots[path] = (int(dev), int(ino))
        elif kind == "S":
            _, dev, ino, mode, blob = line.split(" ", 4)
            key = (int(dev), int(ino))
            content[key + (gen.get(key, 0),)] = (int(mode, 8), blob)
        elif kind == "D":
            _, dev, ino, blob = line.split(" ", 3)
            key = (int(dev), int(ino))
            entries = []
            with open(os.path.join(shadow, blob), "rb") as f:
                for ent in f.read().decode("utf-8", "surrogateescape").split("\n"):
                    if not ent:
                        continue
                    cdev, cino, typ, name = ent.split(" ", 3)
                    ckey = (int(cdev), int(cino))
                    entries.append((name, ckey + (gen.get(ckey, 0),), typ))
            listing[key + (gen.get(key, 0),)] = entries
        elif kind == "U":
            _, dev, ino = line.split(" ")
            key = (int(dev), int(ino))
            gen[key] = gen.get(key, 0) + 1
        else:
            raise ValueError("journal: unknown line %r" % line)
    return roots, content, listing


def _empty(path):
    for name in os.listdir(path):
        p = os.path.join(path, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


def rollback(shadow, torn_seed=None):
    roots, content, listing = _replay(shadow)
    rng = random.Random(torn_seed) if torn_seed is not None else None
    summary = {}
    for root, (dev, ino) in roots.items():
        # The current tree moves aside: --torn reads unsynced appends from it.
        old = root.rstrip("/") + ".powerloss-old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(root, old)
        os.mkdir(root, 0o755)
        stats = {"files": 0, "dirs": 0, "bytes": 0, "torn_bytes": 0}

        def build(key, path, rel):
            for name, ckey, typ in sorted(listing.get(key, [])):
                cpath = os.path.join(path, name)
                crel = os.path.join(rel, name) if rel else name
                if typ == "d":
                    os.mkdir(cpath, 0o755)
                    stats["dirs"] += 1
                    build(ckey, cpath, crel)
                    continue
                data = b""
                mode = 0o644
                if ckey in content:
                    mode, blob = content[ckey]
                    with open(os.path.join(shadow, blob), "rb") as f:
                        data = f.read()
                cur = os.path.join(old, crel)
                if rng is not None and os.path.isfile(cur) and os.path.getsize(cur) > len(data):
                    with open(cur, "rb") as f:
                        now = f.read()
                    if now.startswith(data):
                        # A zero tail is preallocation (ftruncate, fallocate):
                        # cut only within the bytes written before it.
                        ext = now[len(data):].rstrip(b"\0")
                        extra = rng.randint(0, len(ext))
                        stats["torn_bytes"] += extra
                        data = now[:len(data) + extra]
                with open(cpath, "wb") as f:
                    f.write(data)
                os.chmod(cpath, mode)
                stats["files"] += 1
                stats["bytes"] += len(data)

        build((dev, ino, 0), root, "")
        shutil.rmtree(old)
        summary[root] = stats
    _empty(shadow)
    return summary


def main(argv):
    args = list(argv)
    torn = None
    keep = False
    if "--torn" in args:
        i = args.index("--torn")
        torn = int(args[i + 1])
        del args[i:i + 2]
    if "--keep-journal" in args:
        args.remove("--keep-journal")
        keep = True
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    shadow = args[0]
    if keep:
        saved = shadow.rstrip("/") + ".kept"
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(shadow, saved)
    for root, st in rollback(shadow, torn).items():
        print("%s: %d files, %d dirs, %d bytes durable%s" % (
            root, st["files"], st["dirs"], st["bytes"],
            ", %d unsynced bytes kept" % st["torn_bytes"] if torn is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
