#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kafkajs 2.2.4 through broker faults on a replicated cluster
(0689_failoverlib.py): an idempotent acks=all producer (every send() that
resolved is checked) and a group consumer from the beginning (kafkajs has
no manual assignment), each a node process (js/failover.js), through a
leader SIGKILL, a leader's controlled shutdown and a dead first bootstrap
broker; nothing acknowledged is lost, nothing is stored twice. The
producer sets retry.retries Number.MAX_SAFE_INTEGER and sends one
partition's records per send(); the consumer keeps kafkajs's defaults
(js/failover.js says why, with the kafkajs source lines).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("failoverlib",
                                              os.path.join(HERE, "0689_failoverlib.py"))
fl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fl)
JS = os.path.join(HERE, "js")
TMP = tempfile.mkdtemp(prefix="trib-kjs-failover.")


class Node:
    """A js/failover.js process; its JSON lines read in a thread."""

    def __init__(self, args, name):
        self.name = name
        self.acked, self.got, self.errors = [], [], []
        self.done = False
        self.handed = 0
        self.err = open(os.path.join(TMP, name + ".stderr"), "w+b")
        self.p = subprocess.Popen(["node", os.path.join(JS, "failover.js")] + args,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  env=dict(os.environ, NODE_PATH=os.path.join(JS, "node_modules")))
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                self.errors.append("not JSON: %r" % line[:200])
                continue
            if "acked" in ev:
                self.acked.extend(v.encode() for v in ev["acked"])
            elif "handed" in ev:
                self.handed = ev["handed"]
            elif "got" in ev:
                self.got.extend(v.encode() for v in ev["got"])
            elif "log" in ev:
                fl.log("%s +%.1fs: kafkajs: %s" % (self.name, ev.get("t", 0), ev["log"][:300]))
            elif "error" in ev:
                self.errors.append(ev["error"])
            elif ev.get("done"):
                self.done = True
                fl.log("%s +%.1fs: done" % (self.name, ev.get("t", 0)))

    def wait(self, timeout):
        """None once the process exited by itself, else why not (it is then killed)."""
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            self.t.join(5)
            return "did not finish within %ds" % timeout
        self.t.join(5)
        if self.p.returncode != 0 or self.errors or not self.done:
            self.err.seek(0)
            return "exit %d, errors %s, stderr %s" % (
                self.p.returncode, self.errors[:5],
                self.err.read().decode(errors="replace")[-500:])
        return None


class Producer:
    def __init__(self, bootstrap, topic, recs):
        self.node = Node(["produce", bootstrap, topic, str(fl.PARTITIONS)], topic + ".producer")

        def send(k, v):
            self.node.p.stdin.write(k + b" " + v + b"\n")
            self.node.p.stdin.flush()
        self.pace = fl.Paced(recs, send)

    def progress(self):
        """Records the node script has passed to producer.send()."""
        return self.node.handed

    def finish(self, timeout):
        deadline = time.monotonic() + timeout
        err = self.pace.join(timeout)
        try:
            self.node.p.stdin.close()
        except OSError:
            pass
        err = self.node.wait(max(1, deadline - time.monotonic())) or err
        if err:
            return None, err
        return list(self.node.acked), None


class Consumer:
    def __init__(self, bootstrap, topic, n):
        self.node = Node(["consume", bootstrap, topic, str(n)], topic + ".consumer")

    def finish(self, timeout):
        err = self.node.wait(timeout)
        return list(self.node.got), (
            "%s; read %d distinct of the records" % (err, len(set(self.node.got))) if err else None)


class Driver:
    name = "kjs"
    idempotent = True

    def available(self):
        if not shutil.which("node"):
            raise fl.Skip("node is not installed")
        if not os.path.isdir(os.path.join(JS, "node_modules", "kafkajs")):
            if not shutil.which("npm"):
                raise fl.Skip("kafkajs is not installed and there is no npm")
            r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS,
                               capture_output=True, timeout=300)
            if r.returncode != 0:
                raise fl.Skip("npm ci in %s failed: %s" % (JS, r.stderr.decode()[-300:]))

    def producer(self, bootstrap, topic, recs):
        return Producer(bootstrap, topic, recs)

    def consumer(self, bootstrap, topic, n):
        return Consumer(bootstrap, topic, n)


try:
    fl.run_client_test(Driver())
finally:
    if not os.environ.get("TRIB_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
