# SPDX-License-Identifier: Apache-2.0
"""Integration test harness (Python): the same contract as harness.sh.

    from tributary_harness import Collector, run_test

    def main(c):                      # c: a started Collector
        produce(c.bootstrap) ...
        c.restart("KILL")             # same data dir; "TERM" (exit 0) or "KILL"
        consume(c.bootstrap) ...

    run_test(main)                    # exit 0 pass, 1 fail, 77 skip

The collector runs as `tributary-collector --listen 127.0.0.1:0 --metrics
127.0.0.1:0 --data-dir <tmp>/data --ready-file <tmp>/ready` and is ready
when the ready file has its two lines (`kafka HOST:PORT`, `metrics
HOST:PORT`), waited for at most TRIB_READY_TIMEOUT seconds. However the
test ends, the collector is stopped; the test fails if it died unasked, if
SIGTERM did not end it with status 0, or if a log holds a sanitizer report.
Run with Debian's /usr/bin/python3 (it has python3-kafka and
python3-confluent-kafka).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN_DIR = os.environ.get("TRIB_BIN_DIR", os.path.join(ROOT, "build", "bin"))
CLI = os.path.join(BIN_DIR, "tributary")
COLLECTOR = os.path.join(BIN_DIR, "tributary-collector")
READY_TIMEOUT = float(os.environ.get("TRIB_READY_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("TRIB_STOP_TIMEOUT", "30"))
SKIP = 77
# A sanitizer report in a daemon's output (UndefinedBehaviorSanitizer's
# reports start with "runtime error:"). The one place the integration tests
# look for them: harness.sh and the shell tests call `sanitizer-check`.
SANITIZER = re.compile(rb"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                       rb"ThreadSanitizer|MemorySanitizer|runtime error:")


class Skip(Exception):
    pass


class TestFailure(Exception):
    pass


def sanitizer_report(data):
    """The text around the first sanitizer report in data (bytes or str), or None."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    m = SANITIZER.search(data or b"")
    if not m:
        return None
    return data[max(0, m.start() - 200):m.start() + 3000].decode("utf-8", "replace")


def check_sanitizer(data, where):
    """Fails the test if data (a daemon's output) holds a sanitizer report."""
    report = sanitizer_report(data)
    if report is not None:
        raise TestFailure("sanitizer report in %s:\n%s" % (where, report))


def check_sanitizer_files(paths):
    """Fails the test if one of the files holds a sanitizer report."""
    for path in paths:
        with open(path, "rb") as f:
            check_sanitizer(f.read(), path)


def log(msg):
    print("[%s] %s" % (os.path.basename(sys.argv[0]), msg), file=sys.stderr, flush=True)


def broker_available():
    """The collector must exist and take --ready-file (the broker has landed)."""
    if not os.access(COLLECTOR, os.X_OK):
        raise TestFailure("%s is not built" % COLLECTOR)
    out = subprocess.run([COLLECTOR, "--help"], capture_output=True, timeout=30)
    if b"--ready-file" not in out.stdout + out.stderr:
        raise Skip("tributary-collector has no --ready-file yet (the broker has not landed)")


class Collector:
    def __init__(self, extra_args=(), env=None):
        self.tmp = tempfile.mkdtemp(prefix="trib-it.")
        self.env = env  # None: the test's own environment
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(self.data)
        self.extra = list(extra_args)
        self.proc = None
        self.runs = 0
        self.logs = []
        self.bootstrap = None
        self.metrics = None

    def start(self):
        assert self.proc is None, "collector already running"
        self.runs += 1
        ready = os.path.join(self.tmp, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        logpath = os.path.join(self.tmp, "collector.%d.log" % self.runs)
        self.logs.append(logpath)
        with open(logpath, "wb") as lf:
            self.proc = subprocess.Popen(
                [COLLECTOR, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                 "--data-dir", self.data, "--ready-file", ready] + self.extra,
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            lines = []
            if os.path.exists(ready):
                with open(ready) as f:
                    lines = [l.split() for l in f.read().splitlines() if l.strip()]
            if len(lines) >= 2:
                break
            st = self.proc.poll()
            if st is not None:
                self.proc = None
                raise TestFailure("the collector exited with status %s before it was ready" % st)
            if time.monotonic() > deadline:
                raise TestFailure("the collector was not ready within %gs" % READY_TIMEOUT)
            time.sleep(0.05)
        for words in lines:
            if len(words) == 2 and words[0] == "kafka":
                self.bootstrap = words[1]
            elif len(words) == 2 and words[0] == "metrics":
                self.metrics = words[1]
        if not self.bootstrap:
            raise TestFailure("ready file has no 'kafka HOST:PORT' line: %r" % lines)
        log("collector pid %d ready: kafka %s, metrics %s"
            % (self.proc.pid, self.bootstrap, self.metrics))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig="TERM"):
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            st = self.proc.returncode
            self.proc = None
            raise TestFailure("the collector died unexpectedly, status %s" % st)
        self.proc.send_signal(signal.SIGTERM if sig == "TERM" else signal.SIGKILL)
        try:
            st = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise TestFailure("the collector did not exit within %gs of SIG%s"
                              % (STOP_TIMEOUT, sig))
        self.proc = None
        if sig == "TERM" and st != 0:
            raise TestFailure("SIGTERM ended the collector with status %s, not 0" % st)
        if sig == "KILL" and st != -signal.SIGKILL:
            raise TestFailure("SIGKILL ended the collector with status %s" % st)
        log("collector stopped by SIG%s" % sig)
        self.check_logs()

    def restart(self, sig="TERM"):
        self.stop(sig)
        return self.start()

    def check_logs(self):
        check_sanitizer_files(self.logs)

    def dump_logs(self):
        for path in self.logs:
            with open(path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            print("----- %s (last 80 lines) -----" % path, file=sys.stderr)
            print("\n".join(lines[-80:]), file=sys.stderr)

    def cli(self, *args, input=None, check=True, timeout=120):
        """Runs the tributary CLI; returns the CompletedProcess (text)."""
        p = subprocess.run([CLI] + list(args) + ["--bootstrap", self.bootstrap],
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise TestFailure("tributary %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                             p.stderr.strip()))
        return p


def make_records(n_keys, per_key, pad=0):
    """(key, value) byte pairs, interleaved across keys, seq increasing per key."""
    out = []
    for seq in range(per_key):
        for k in range(n_keys):
            key = b"key-%d" % k
            value = b"key-%d-%d" % (k, seq)
            if pad:
                value += b"|" + b"x" * pad
            out.append((key, value))
    return out


def check_records(pairs, n_keys, per_key):
    """Problems (strings) with a consumed stream of (key, value) pairs."""
    problems = []
    last = {}
    seen = set()
    for key, value in pairs:
        value = value.split(b"|", 1)[0]
        head, _, seq = value.rpartition(b"-")
        if head != key or not seq.isdigit():
            problems.append("record %r=%r does not match its key" % (key, value))
            continue
        seq = int(seq)
        if (key, seq) in seen:
            problems.append("duplicate %r seq %d" % (key, seq))
            continue
        seen.add((key, seq))
        if key in last and seq < last[key]:
            problems.append("order: %r seq %d after %d" % (key, seq, last[key]))
        last[key] = seq
    expected = n_keys * per_key
    if len(seen) != expected:
        missing = [(b"key-%d" % k, s) for k in range(n_keys) for s in range(per_key)
                   if (b"key-%d" % k, s) not in seen]
        problems.append("%d distinct records, expected %d; missing e.g. %r"
                        % (len(seen), expected, missing[:5]))
    return problems


def batch_codecs(data_dir, topic):
    """Codec ids of the record batches stored for a topic, read from the
    Kafka-layout segment files <data>/<topic>-<p>/*.log; None when there are none."""
    import glob
    import struct
    codecs = set()
    files = glob.glob(os.path.join(data_dir, topic + "-*", "*.log"))
    if not files:
        return None
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            length = struct.unpack_from(">i", data, pos + 8)[0]
            if length < 49 or pos + 12 + length > len(data):
                break
            codecs.add(struct.unpack_from(">h", data, pos + 21)[0] & 7)
            pos += 12 + length
    return codecs


CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def expect_codec(c, topic, codec):
    """Fails unless the topic's stored batches were compressed with the codec.

    librdkafka and kafka-python send a batch uncompressed when compression
    would not shrink it (small tail batches), so uncompressed batches may sit
    beside the codec's; any other codec, or none of the codec's, fails.
    Skipped with a note when the data dir has no Kafka-layout segments.
    """
    found = batch_codecs(c.data, topic)
    if found is None:
        log("note: no segment files for %s under %s; codec not checked" % (topic, c.data))
        return
    want = CODEC_IDS[codec]
    if not found <= {0, want} or want not in found:
        raise TestFailure("topic %s: stored batches use codecs %s, expected %d (%s)%s"
                          % (topic, sorted(found), want, codec,
                             " and maybe uncompressed ones" if want else ""))
    log("topic %s: stored batches are %s%s" % (topic, codec,
                                              " (and some uncompressed)" if len(found) > 1 else ""))


def broker_advertises(c, api_key, version):
    """True if the broker's advertised range of api_key contains version."""
    out = c.cli("cluster", "describe", "--api-versions").stdout
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == str(api_key) and "-" in words[2]:
            lo, hi = words[2].split("-", 1)
            return int(lo) <= version <= int(hi)
    return False


def mount_tmpfs(path, size):
    """Mounts a tmpfs of `size` (e.g. "24m") on path; (ok, error text)."""
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def umount(path):
    """Unmounts path if it is a mount point (lazily if it is busy)."""
    if os.path.ismount(path):
        p = subprocess.run(["umount", path], capture_output=True, text=True)
        if p.returncode != 0:
            subprocess.run(["umount", "-l", path])


def require_mount():
    """A test that needs a small filesystem: Skip where mounting a tmpfs is
    impossible (not root, no privilege), but a failure when CI=true."""
    probe = tempfile.mkdtemp(prefix="trib-mnt-probe.")
    try:
        if os.geteuid() != 0:
            ok, why = False, "not root"
        else:
            ok, why = mount_tmpfs(probe, "1m")
        umount(probe)
    finally:
        os.rmdir(probe)
    if not ok:
        msg = "cannot mount a tmpfs here (%s)" % why
        if os.environ.get("CI") == "true":
            raise TestFailure(msg + ": CI must allow it")
        raise Skip(msg)


def fill_file(path, chunk=4096):
    """Appends zeros to path until its filesystem is full; returns the bytes written."""
    n = 0
    buf = b"\0" * chunk
    with open(path, "ab", buffering=0) as f:
        while True:
            try:
                f.write(buf)
            except OSError:
                return n
            n += chunk


def run_test(fn, extra_args=()):
    """Starts a collector, runs fn(collector), stops it; exits 0, 1 or 77."""
    c = None
    rc = 0
    try:
        broker_available()
        c = Collector(extra_args).start()
        fn(c)
        c.stop("TERM")
        c.check_logs()
    except Skip as e:
        log("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - any failure fails the test
        log("FAIL: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        rc = 1
    finally:
        if c is not None:
            try:
                if c.proc is not None:
                    c.stop("TERM")
                c.check_logs()
            except BaseException as e:  # noqa: B902
                log("FAIL: %s" % e)
                rc = 1
            if rc not in (0, SKIP):
                c.dump_logs()
                log("kept %s" % c.tmp)
            elif not os.environ.get("TRIB_KEEP_TMP"):
                shutil.rmtree(c.tmp, ignore_errors=True)
    if rc == 0:
        log("PASS")
    sys.exit(rc)


def _main(argv):
    """Command line for the bash tests:
    gen N_KEYS PER_KEY [PAD]        prints "KEY VALUE" lines (make_records)
    verify FILE N_KEYS PER_KEY      checks "KEY VALUE" lines (check_records)
    codecs DATA_DIR TOPIC           prints the codec ids of the stored batches
    sanitizer-check FILE...         exit 1 and the report if a file holds a
                                    sanitizer report (missing files are skipped)
    """
    if len(argv) >= 3 and argv[0] == "gen":
        pad = int(argv[3]) if len(argv) > 3 else 0
        out = sys.stdout.buffer
        for k, v in make_records(int(argv[1]), int(argv[2]), pad):
            out.write(k + b" " + v + b"\n")
        return 0
    if len(argv) == 4 and argv[0] == "verify":
        pairs = []
        with open(argv[1], "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if line:
                    k, _, v = line.partition(b" ")
                    pairs.append((k, v))
        problems = check_records(pairs, int(argv[2]), int(argv[3]))
        for p in problems[:20]:
            print("verify:", p, file=sys.stderr)
        print("verify: %d records read from %s, %d problems"
              % (len(pairs), argv[1], len(problems)), file=sys.stderr)
        return 1 if problems else 0
    if len(argv) == 3 and argv[0] == "codecs":
        found = batch_codecs(argv[1], argv[2])
        print("none" if found is None else " ".join(str(c) for c in sorted(found)))
        return 0
    if len(argv) >= 1 and argv[0] == "sanitizer-check":
        try:
            check_sanitizer_files(p for p in argv[1:] if os.path.isfile(p))
        except TestFailure as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    print(_main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
