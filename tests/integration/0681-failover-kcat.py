#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kcat (librdkafka 2.0.2) through broker faults on a replicated cluster
(0689_failoverlib.py): `kcat -P` with enable.idempotence=true (acks=all)
fed keyed lines at a steady pace, which must exit 0 without a delivery
failure, and `kcat -C -o beginning -c N` (manual assignment), through a
dead first bootstrap broker, a leader SIGKILL and a leader's controlled
shutdown; nothing acknowledged is lost, nothing is stored twice.
"""
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "failoverlib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0689_failoverlib.py"))
fl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fl)
TMP = tempfile.mkdtemp(prefix="trib-kcat-failover.")


def finish_proc(p, timeout):
    try:
        p.wait(timeout)
        return None
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return "kcat did not finish within %ds" % timeout


class Producer:
    def __init__(self, bootstrap, topic, recs):
        self.err = open(os.path.join(TMP, topic + ".perr"), "w+b")
        self.p = subprocess.Popen(
            ["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", " ", "-X", "enable.idempotence=true",
             "-X", "linger.ms=5", "-X", "message.timeout.ms=%d" % (fl.CLIENT_TIMEOUT * 1000)],
            stdin=subprocess.PIPE, stderr=self.err)

        def send(k, v):
            self.p.stdin.write(k + b" " + v + b"\n")
            self.p.stdin.flush()
        self.pace = fl.Paced(recs, send)

    def progress(self):
        return self.pace.sent

    def finish(self, timeout):
        deadline = time.monotonic() + timeout
        err = self.pace.join(timeout)
        timeout = max(1, deadline - time.monotonic())
        self.p.stdin.close()
        err = finish_proc(self.p, timeout) or err
        self.err.seek(0)
        text = self.err.read().decode(errors="replace")
        failed = [l for l in text.splitlines() if "Delivery failed" in l]
        if err or self.p.returncode != 0 or failed:
            return None, "%s; exit %s; %s" % (err, self.p.returncode, failed[:5] or text[-500:])
        return None, None  # kcat reports no per-record acks: exit 0 means every one


class Consumer:
    def __init__(self, bootstrap, topic, n):
        self.out = open(os.path.join(TMP, topic + ".out"), "w+b")
        self.p = subprocess.Popen(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
                                   "-c", str(n), "-q", "-f", "%s\\n"], stdout=self.out,
                                  stderr=subprocess.DEVNULL)
        self.n = n

    def finish(self, timeout):
        err = finish_proc(self.p, timeout)
        self.out.seek(0)
        got = [l for l in self.out.read().split(b"\n") if l]
        if err or self.p.returncode != 0 or len(got) < self.n:
            return got, "%s; exit %s; read %d of %d" % (err, self.p.returncode, len(got), self.n)
        return got, None


class Driver:
    name = "kcat"
    idempotent = True

    def available(self):
        if not shutil.which("kcat"):
            raise fl.Skip("kcat is not installed")

    def producer(self, bootstrap, topic, recs):
        return Producer(bootstrap, topic, recs)

    def consumer(self, bootstrap, topic, n):
        return Consumer(bootstrap, topic, n)


try:
    fl.run_client_test(Driver())
finally:
    if not os.environ.get("TRIB_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
