#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tributary-bench-failover: the unavailability a producer sees per fault.

    tributary-bench-failover [--brokers 3] [--faults 5] [--kinds kill,term]
                             [--rate 200] [--replication-factor 3] [--min-insync 2]
                             [--session-timeout 6s] [--interval 3] [--max-wait 120]
                             [--repo DIR] [--bin DIR]

It starts one ZooKeeper and N collectors on 127.0.0.1 (tests/integration/
lib/zk_cluster.py, as scripts/cluster does), creates a one-partition topic
with the replication factor (and min.insync.replicas, at most the factor),
and produces to it at a steady --rate with confluent-kafka (librdkafka):
acks=all, enable.idempotence, message.timeout.ms 300000 (so an outage
shorter than five minutes surfaces no delivery error) and
reconnect.backoff.max.ms 1000. librdkafka waits reconnect.backoff.ms after
its last connection attempt to a broker before the next, doubling the wait
up to reconnect.backoff.max.ms (10 s by default) while attempts come less
than that far apart; with faults a few seconds apart the next leader is
often the broker restarted by the previous fault, and the default would
measure that backoff rather than the cluster. Then, per kind, it
injects --faults faults on the partition's leader (found with `tributary
topics describe` on each live broker):
  kill  SIGKILL; the broker is started again once the producer is acked
        again or once the cluster no longer lists it (its session expired),
        whichever comes first
  term  SIGTERM (a controlled shutdown), then started again at once
and before the next fault waits until the restarted broker is back in the
ISR (Status ok) and --interval seconds of acks have passed.

Per fault it prints the unavailability the producer saw: the longest gap
between consecutive acknowledgements from the last one before the fault
until acknowledgements come after the broker is back (so it is the outage
whether a new leader took over first or the old one came back), and when
acks first resumed after the fault; the delivery errors the application got
in that window, fatal producer errors (the application replaces the
producer, as it must); and the client's error events (librdkafka's
error_cb: transport errors it retries by itself). Per kind it
prints p50 and p99 (nearest rank) over the faults with the session timeout
beside them. It prints figures and asserts nothing; the exit status is 1
only when a fault never recovered within --max-wait seconds.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
TOPIC = "failover-bench"


def source_dir(bindir):
    cache = os.path.join(bindir, "..", "CMakeCache.txt")
    with open(cache) as f:
        for line in f:
            if line.startswith("tributary_SOURCE_DIR:STATIC="):
                return line.split("=", 1)[1].strip()
    raise SystemExit("tributary-bench-failover: no tributary_SOURCE_DIR in %s; use --repo" % cache)


def seconds(s):
    m = re.match(r"^(\d+(?:\.\d+)?)(ms|s)?$", s)
    if not m:
        raise argparse.ArgumentTypeError("want a duration such as 6s or 6000ms, not %r" % s)
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


def percentile(vals, p):
    """Nearest rank."""
    v = sorted(vals)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


class Load:
    """A producer thread at a steady rate; every acknowledgement and error is timed."""

    def __init__(self, bootstrap, rate):
        self.bootstrap = bootstrap
        self.lock = threading.Lock()
        self.acks = []         # monotonic times of acknowledgements, in order
        self.failed = []       # (time, error name) of delivery errors
        self.client_errors = []  # (time, error name) from error_cb
        self.fatal = []        # (time, error name): the producer failed and was replaced
        self.sent = 0
        self.rate = rate
        self.stop_ev = threading.Event()
        self.p = self.new_producer()
        self.t = threading.Thread(target=self.run, daemon=True)

    def new_producer(self):
        from confluent_kafka import Producer
        return Producer({
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 300000,
            "linger.ms": 0,
            "allow.auto.create.topics": False,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self.on_error,
        })

    def on_error(self, err):
        with self.lock:
            self.client_errors.append((time.monotonic(), err.name()))

    def on_delivery(self, err, msg):
        now = time.monotonic()
        with self.lock:
            if err is None:
                self.acks.append(now)
            else:
                self.failed.append((now, err.name()))

    def run(self):
        from confluent_kafka import KafkaException
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            now = time.monotonic()
            try:
                if now >= nxt:
                    try:
                        self.p.produce(TOPIC, value=b"%d" % self.sent,
                                       on_delivery=self.on_delivery)
                        self.sent += 1
                    except BufferError:
                        pass
                    nxt += period
                    if nxt < now - 1:
                        nxt = now  # fell behind by more than a second: do not burst
                self.p.poll(min(0.005, max(0, nxt - time.monotonic())))
            except KafkaException as e:
                # A fatal error (the idempotent producer cannot go on): the
                # application sees it and starts a new producer.
                with self.lock:
                    self.fatal.append((time.monotonic(), e.args[0].name()))
                self.p = self.new_producer()

    def start(self):
        self.t.start()

    def stop(self, timeout=60):
        self.stop_ev.set()
        self.t.join()
        return self.p.flush(timeout)

    def last_ack_before(self, t):
        with self.lock:
            before = [a for a in self.acks if a <= t]
        return before[-1] if before else None

    def first_ack_after(self, t):
        with self.lock:
            for a in self.acks:
                if a > t:
                    return a
        return None

    def longest_silence(self, t0, t1):
        """The longest gap between consecutive acknowledgements from t0 to t1 (both acks)."""
        with self.lock:
            w = [a for a in self.acks if t0 <= a <= t1]
        return max((y - x for x, y in zip(w, w[1:])), default=0.0)

    def acks_after(self, t):
        with self.lock:
            return sum(1 for a in self.acks if a > t)


def describe_partition(cl, cli):
    """(leader, replicas, isr, status) of partition 0 as a live broker that knows the topic sees it."""
    for b in cl.live():
        if b.paused:
            continue
        p = subprocess.run([cli, "--bootstrap", b.bootstrap, "topics", "describe", TOPIC],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            continue
        for line in p.stdout.splitlines():
            if line.startswith("\tTopic: ") and "\tPartition: 0\t" in line:
                f = dict(c.split(": ", 1) for c in line[1:].split("\t"))
                leader = -1 if f["Leader"] == "none" else int(f["Leader"])
                ids = lambda s: [int(x) for x in s.split(",")] if s else []  # noqa: E731
                if leader >= 0:
                    return leader, ids(f["Replicas"]), ids(f["Isr"]), f["Status"]
    return None


def registered(cl, node_id):
    """Whether another live broker lists node_id."""
    for b in cl.live():
        if b.paused or b.id == node_id:
            continue
        try:
            _, brokers = b.describe()
            return node_id in brokers
        except ValueError:
            continue
    return True


def restart(b, zk_cluster, deadline):
    """Starts broker b again. A collector whose id is still registered by its
    killed predecessor's session refuses to run (status 1, after it is ready):
    it is started again until it registers (tributary_cluster_registered 1)."""
    # The same port as before: clients know the broker by it (a one-broker
    # cluster has no other broker to tell them a new one). The last --listen wins.
    b.extra = ["--listen", b.bootstrap]
    while True:
        try:
            b.start()

            def registered_or_exited():
                if b.proc.poll() is not None:
                    return "exited"
                return "ok" if b.metrics().get("tributary_cluster_registered") == 1 else None
            if zk_cluster.wait_for("broker %d registered" % b.id, registered_or_exited,
                                   max(1, deadline - time.monotonic()), 0.05) == "ok":
                return True
            b.proc = None  # refused: the old registration lives on
        except zk_cluster.TestFailure as e:
            if b.proc is not None and b.proc.poll() is not None:
                b.proc = None
            if time.monotonic() > deadline:
                print("  broker %d did not start again: %s" % (b.id, e))
                return False
        if time.monotonic() > deadline:
            print("  broker %d did not register again" % b.id)
            return False
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--faults", type=int, default=5)
    ap.add_argument("--kinds", default="kill,term")
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--replication-factor", type=int, default=3)
    ap.add_argument("--min-insync", type=int, default=2)
    ap.add_argument("--session-timeout", type=seconds, default=6.0)
    ap.add_argument("--interval", type=float, default=3.0)
    ap.add_argument("--max-wait", type=float, default=120.0)
    ap.add_argument("--repo", default=os.environ.get("TRIB_REPO", ""))
    ap.add_argument("--bin", default=HERE)
    a = ap.parse_args()
    kinds = [k for k in a.kinds.split(",") if k]
    if not kinds or any(k not in ("kill", "term") for k in kinds) or a.faults < 1 or a.rate <= 0:
        ap.error("--kinds: kill and/or term; --faults >= 1; --rate > 0")
    bindir = os.path.abspath(a.bin)
    repo = a.repo or source_dir(bindir)
    os.environ["TRIB_BIN_DIR"] = bindir
    sys.path.insert(0, os.path.join(repo, "tests", "integration", "lib"))
    import tributary_harness as th
    th.log = lambda msg: None
    import zk_cluster
    zk_cluster.log = lambda msg: None
    cli = os.path.join(bindir, "tributary")

    session_ms = int(a.session_timeout * 1000)
    print("tributary-bench-failover: %d brokers, session timeout %gs, topic with 1 partition, "
          "replication factor %d, min.insync.replicas %d; confluent-kafka acks=all idempotent "
          "(reconnect.backoff.max.ms 1000) at %g msg/s; %d faults of each of %s; %d CPUs"
          % (a.brokers, a.session_timeout, a.replication_factor,
             min(a.min_insync, a.replication_factor), a.rate, a.faults, ",".join(kinds),
             os.cpu_count()))
    sys.stdout.flush()
    rc = 0
    with zk_cluster.Cluster(brokers=a.brokers, session_timeout="%dms" % session_ms,
                            root=tempfile.mkdtemp(prefix="trib-bench-failover.")) as cl:
        cl.start()
        cl.wait_controller(timeout=120)
        boot = cl.bootstrap()
        p = subprocess.run([cli, "--bootstrap", boot, "topics", "create", "--topic", TOPIC,
                            "--partitions", "1", "--replication-factor",
                            str(a.replication_factor), "--config", "min.insync.replicas=%d"
                            % min(a.min_insync, a.replication_factor)],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            print("cannot create the topic: %s" % p.stderr.strip())
            return 1
        state = zk_cluster.wait_for("the topic has a leader",
                                    lambda: describe_partition(cl, cli), a.max_wait, 0.2)
        print("topic %s: leader %d, replicas %s, isr %s" % (TOPIC, state[0], state[1], state[2]))
        load = Load(boot, a.rate)
        load.start()
        t0 = time.monotonic()
        zk_cluster.wait_for("the first acknowledgements", lambda: load.acks_after(t0) >= 10,
                            a.max_wait, 0.1)
        results = {k: [] for k in kinds}
        for kind in kinds:
            for i in range(a.faults):
                # Steady state: the partition fully replicated and acks flowing.
                def steady():
                    st = describe_partition(cl, cli)
                    return st if st and st[3] == "ok" else None
                try:
                    leader, replicas, isr, _ = zk_cluster.wait_for(
                        "partition fully in sync before fault", steady, a.max_wait, 0.2)
                except zk_cluster.TestFailure as e:
                    print("  %s" % e)
                    rc = 1
                    break
                time.sleep(a.interval)
                b = cl.broker(leader)
                errs0 = len(load.client_errors)
                fails0 = len(load.failed)
                fatal0 = len(load.fatal)
                t_fault = time.monotonic()
                restarted = None
                if kind == "kill":
                    b.kill("KILL")
                    # Started again once its session ended (a broker id cannot register
                    # twice), as far as the other brokers tell; restart() retries anyway.
                    if len(cl.live()) > 0:
                        try:
                            zk_cluster.wait_for("broker %d unregistered" % leader,
                                                lambda: not registered(cl, leader), a.max_wait,
                                                0.1)
                        except zk_cluster.TestFailure as e:
                            print("  %s" % e)
                    ok = restart(b, zk_cluster, time.monotonic() + a.max_wait)
                    restarted = time.monotonic() - t_fault
                else:
                    b.kill("TERM")
                    ok = restart(b, zk_cluster, time.monotonic() + a.max_wait)
                    restarted = time.monotonic() - t_fault
                first = None
                t_back = time.monotonic()
                if ok:
                    try:
                        # acks after the broker is back: the outage is over
                        first = zk_cluster.wait_for("the first ack after the restart",
                                                    lambda: load.first_ack_after(t_back),
                                                    a.max_wait, 0.02)
                    except zk_cluster.TestFailure:
                        first = None
                last = load.last_ack_before(t_fault)
                with load.lock:
                    client_errs = [e for _, e in load.client_errors[errs0:]]
                    fails = [e for _, e in load.failed[fails0:]]
                    fatal = [e for _, e in load.fatal[fatal0:]]
                if first is None or last is None:
                    print("fault %d (%s, leader %d): no acknowledgement within %gs; %d delivery "
                          "errors (%s); %d fatal producer errors (%s); stopping"
                          % (i + 1, kind, leader, a.max_wait, len(fails),
                             ",".join(sorted(set(fails))), len(fatal), ",".join(sorted(set(fatal)))))
                    rc = 1
                    break
                gap = load.longest_silence(last, first)
                resumed = load.first_ack_after(t_fault + 0.001)
                results[kind].append(gap)
                print("fault %d (%s, leader %d): unavailable %.2f s (the longest gap between "
                      "acks from %.3f s before the fault until after the restart; acks "
                      "resumed %.2f s after it); %d delivery errors%s; %d fatal producer "
                      "errors%s; %d client error events%s; restarted after %.2f s"
                      % (i + 1, kind, leader, gap, t_fault - last, resumed - t_fault, len(fails),
                         " (%s)" % ",".join(sorted(set(fails))) if fails else "", len(fatal),
                         " (%s)" % ",".join(sorted(set(fatal))) if fatal else "",
                         len(client_errs),
                         " (%s)" % ",".join(sorted(set(client_errs))) if client_errs else "",
                         restarted))
                sys.stdout.flush()
        left = load.stop()
        with load.lock:
            acked, failed = len(load.acks), len(load.failed)
            fatal = len(load.fatal)
        print("producer: %d sent, %d acknowledged, %d delivery errors, %d fatal errors, "
              "%d unsent at the end" % (load.sent, acked, failed, fatal, left))
        for kind in kinds:
            v = results[kind]
            if not v:
                print("%s: no fault measured" % kind)
                continue
            print("%s: unavailability p50 %.2f s, p99 %.2f s, max %.2f s over %d faults; "
                  "session timeout %g s" % (kind, percentile(v, 50), percentile(v, 99), max(v),
                                            len(v), a.session_timeout))
        if rc:
            cl.keep = True
            print("the cluster's logs and data are kept in %s" % cl.root)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a cluster that failed to start or stop: say so, exit 1
        if type(e).__name__ != "TestFailure":
            raise
        print("tributary-bench-failover: %s" % e)
        sys.exit(1)
