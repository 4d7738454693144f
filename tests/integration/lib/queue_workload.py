# SPDX-License-Identifier: Apache-2.0
"""Jepsen's queue workload against collectors, with faults; judged by checker.py.

    from queue_workload import Run, Schedule
    run = Run(mode="cluster", schedule=Schedule(leader_kills=20, ...), seed=1)
    result = run.execute()          # checker.analyze()'s verdict, plus "history"

What runs (mode "cluster": one ZooKeeper and three collectors from
zk_cluster.py; mode "single": one collector, local backend, replication
factor 1, for the workload itself):

  producers   N threads, each an idempotent acks=all confluent-kafka
              producer writing unique values "<name>-<seq>" to random
              partitions of one topic; logged: invoke, ok (partition,
              offset), fail (definite: produce() refused it) or info (any
              failed delivery report: the client cannot say whether a
              request that timed out was written).
              A producer that hits a fatal error is replaced by a new one
              with a new name.
  consumers   M threads, each assigned every partition from its start
              (no group), logging every record read.
  nemesis     the schedule's faults in a seeded random order, one at a
              time, each followed by healing and a wait until every
              partition has a leader and a full ISR again:
                kill-leader   SIGKILL the leader of a random partition (every
                              controller_every-th time the controller), start
                              it again once its registration is gone
                pause         SIGSTOP a partition leader for longer than the
                              session timeout, then SIGCONT
                zk-restart    SIGKILL ZooKeeper, start it again on its data
                zk-pause      SIGSTOP ZooKeeper past the session timeout, SIGCONT
                rolling       SIGTERM and restart every broker in turn
                power-loss    SIGKILL a leader, roll its data dir back to
                              what its last fdatasyncs covered
                              (tests/powerloss), start it
  final read  after the faults: producers flush, consumers stop, and a new
              consumer reads every partition from its log start to its
              high watermark.
  replicas    every broker stopped with SIGTERM, then tributary-replica-check
              over their data dirs (cluster mode).

Brokers keep their Kafka port across restarts (chosen free at the first
start), so clients find them again as a Kafka client finds a restarted
broker. Every wait is bounded.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "powerloss"))
import checker  # noqa: E402
from tributary_harness import (BIN_DIR, COLLECTOR, READY_TIMEOUT, TestFailure,  # noqa: E402
                               check_sanitizer_files, log)
from zk_cluster import Broker, Cluster, free_port, wait_for  # noqa: E402

TOPIC = "checker"
REPLICA_CHECK = os.path.join(BIN_DIR, "tributary-replica-check")


class Schedule:
    def __init__(self, leader_kills=0, controller_every=4, pauses=0, zk_restarts=0, rolling=0,
                 power_losses=0, zk_pauses=0):
        self.leader_kills = leader_kills
        self.controller_every = controller_every
        self.pauses = pauses
        self.zk_restarts = zk_restarts
        self.rolling = rolling
        self.power_losses = power_losses
        self.zk_pauses = zk_pauses

    def faults(self, rng):
        out = []
        for i in range(self.leader_kills):
            ctl = self.controller_every > 0 and i % self.controller_every == self.controller_every - 1
            out.append("kill-controller" if ctl else "kill-leader")
        out += ["pause"] * self.pauses + ["zk-restart"] * self.zk_restarts
        out += ["zk-pause"] * self.zk_pauses
        out += ["rolling"] * self.rolling + ["power-loss"] * self.power_losses
        rng.shuffle(out)
        return out


class PortBroker(Broker):
    """A collector that keeps its Kafka and metrics ports across restarts;
    `local` (no ZooKeeper) for the single-broker mode."""

    def __init__(self, *a, local=False, conf_extra="", host="127.0.0.1", prefix=(),
                 kafka_port=None, metrics_port=None, **kw):
        super().__init__(*a, **kw)
        self.local = local
        self.host = host
        self.prefix = list(prefix)  # e.g. ["ip", "netns", "exec", NS]
        self.kafka_port = kafka_port
        self.metrics_port = metrics_port
        with open(self.conf, "w") as f:  # the whole config (Broker wrote its own)
            f.write(conf_extra)

    def spawn(self):
        assert self.proc is None
        self.runs += 1
        self.ready = os.path.join(self.dir, "ready")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        logpath = os.path.join(self.dir, "collector.%d.log" % self.runs)
        self.logs.append(logpath)
        if self.kafka_port is None:
            self.kafka_port, self.metrics_port = free_port(), free_port()
        args = self.prefix + [
            COLLECTOR, "--config", self.conf, "--listen", "%s:%d" % (self.host, self.kafka_port),
            "--metrics", "%s:%d" % (self.host, self.metrics_port), "--data-dir", self.data,
            "--ready-file", self.ready]
        if not self.local:
            args += ["--node-id", str(self.id), "--zookeeper", self.zk.connect]
        with open(logpath, "wb") as lf:
            self.proc = subprocess.Popen(args + self.extra, stdout=lf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)
        return self


class History:
    def __init__(self):
        self.events = []
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def add(self, **e):
        e["t"] = round(time.monotonic() - self.t0, 4)
        with self.lock:
            self.events.append(e)

    def now(self):
        return time.monotonic() - self.t0


class ProducerThread(threading.Thread):
    def __init__(self, run, index):
        super().__init__(daemon=True, name="producer-%d" % index)
        self.run_ = run
        self.index = index
        self.gen = 0
        self.stop = threading.Event()
        self.errors = 0
        self.fatal = None
        self.outstanding = 0

    def new_producer(self):
        from confluent_kafka import Producer
        self.gen += 1
        self.name = "p%d" % self.index if self.gen == 1 else "p%dr%d" % (self.index, self.gen)
        self.fatal = None

        def on_error(err):
            self.errors += 1
            if err.fatal():
                self.fatal = err
        conf = {"bootstrap.servers": self.run_.bootstrap(), "acks": "all",
                "enable.idempotence": True, "linger.ms": 5,
                "message.timeout.ms": self.run_.message_timeout_ms,
                "request.timeout.ms": 10000, "socket.timeout.ms": 10000,
                "reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 2000,
                "error_cb": on_error, "log_level": 2}
        if os.environ.get("TRIB_CHECKER_RDKAFKA_DEBUG"):
            # librdkafka's debug contexts (e.g. "eos,msg,metadata") on stderr.
            conf.update({"debug": os.environ["TRIB_CHECKER_RDKAFKA_DEBUG"], "log_level": 7})
        return Producer(conf)

    def run(self):
        from confluent_kafka import KafkaException
        h = self.run_.history
        rng = random.Random(self.run_.seed * 1000 + self.index)
        p = self.new_producer()
        seq = 0
        interval = 1.0 / self.run_.rate

        def report(value):
            def cb(err, msg):
                self.outstanding -= 1
                if err is None:
                    h.add(type="ok", value=value, partition=msg.partition(), offset=msg.offset())
                else:
                    # Even _PURGE_QUEUE may follow a send whose answer was
                    # lost (a retry waits in the queue): indeterminate.
                    h.add(type="info", value=value, error=err.name())
            return cb

        while not self.stop.is_set():
            if self.fatal is not None:
                log("%s: fatal error %s: a new producer replaces it" % (self.name, self.fatal))
                h.add(type="note", what="producer-fatal", producer=self.name,
                      error=str(self.fatal))
                p.purge()
                try:
                    p.flush(10)
                except KafkaException:
                    pass
                p = self.new_producer()
                seq = 0
            if self.outstanding > 5000:
                p.poll(0.1)
                continue
            value = "%s-%d" % (self.name, seq)
            part = rng.randrange(self.run_.partitions)
            try:
                p.produce(TOPIC, value=value.encode(), partition=part, on_delivery=report(value))
            except BufferError:
                p.poll(0.1)
                continue
            except KafkaException as e:
                # Refused before it was queued: definitely not written.
                h.add(type="invoke", value=value, partition=part)
                h.add(type="fail", value=value, error=str(e))
                if e.args and e.args[0].fatal():
                    self.fatal = e.args[0]
                seq += 1
                self.stop.wait(interval)
                continue
            self.outstanding += 1
            h.add(type="invoke", value=value, partition=part)
            seq += 1
            p.poll(0)
            self.stop.wait(interval)
        # Flush what is outstanding (bounded), then give up on the rest
        # (each gets its delivery report: indeterminate).
        try:
            left = p.flush(self.run_.message_timeout_ms / 1000.0 + 10)
        except KafkaException as e:
            log("%s: flush: %s" % (self.name, e))
            if e.args and e.args[0].fatal():
                self.fatal = e.args[0]
            left = len(p)
        if self.fatal is not None:
            # Fatal while flushing: recorded as in the loop (what it had in
            # flight gets failed delivery reports: indeterminate).
            log("%s: fatal error %s while flushing" % (self.name, self.fatal))
            h.add(type="note", what="producer-fatal", producer=self.name,
                  error=str(self.fatal))
        if left:
            log("%s: %d messages not settled at the end: purged" % (self.name, left))
            p.purge()
            try:
                p.flush(10)
            except KafkaException:
                pass
        self.produced = seq


class ConsumerThread(threading.Thread):
    def __init__(self, run, index):
        super().__init__(daemon=True, name="consumer-%d" % index)
        self.run_ = run
        self.index = index
        self.stop = threading.Event()
        self.count = 0

    def run(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        h = self.run_.history
        name = "c%d" % self.index
        c = Consumer({"bootstrap.servers": self.run_.bootstrap(), "group.id": "checker-" + name,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "fetch.wait.max.ms": 200, "topic.metadata.refresh.interval.ms": 2000,
                      "reconnect.backoff.max.ms": 1000, "error_cb": lambda err: None,
                      "log_level": 2})
        c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING)
                  for p in range(self.run_.partitions)])
        while not self.stop.is_set():
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            h.add(type="read", reader=name, partition=m.partition(), offset=m.offset(),
                  value=m.value().decode("utf-8", "replace"))
            self.count += 1
        c.close()


class Run:
    def __init__(self, mode="cluster", schedule=None, seed=1, producers=4, consumers=2,
                 partitions=3, rate=50.0, session_s=6, lag_ms=10000, settle_s=1.0,
                 message_timeout_ms=60000):
        self.mode = mode
        self.schedule = schedule or Schedule()
        self.seed = seed
        self.rng = random.Random(seed)
        self.nproducers = producers
        self.nconsumers = consumers
        self.partitions = partitions
        self.rate = rate
        self.session_s = session_s
        self.lag_ms = lag_ms
        self.settle_s = settle_s
        self.message_timeout_ms = message_timeout_ms
        self.history = History()
        self.cluster = None
        self.brokers = {}
        self.powerloss = self.schedule.power_losses > 0
        self.fault_list = None  # overrides the schedule (a subclass's own faults)
        self.unhealed = []

    # ---- topology ----------------------------------------------------------------
    def bootstrap(self):
        return ",".join("%s:%d" % (b.host, b.kafka_port) for b in self.brokers.values())

    def setup(self):
        rf = 1 if self.mode == "single" else 3
        self.rf = rf
        conf = ("cluster:\n  session_timeout: %ds\n  replica.lag.time.max.ms: %d\n"
                % (self.session_s, self.lag_ms) if self.mode != "single" else "{}\n")
        for i in range(1, rf + 1):
            env = None
            if self.powerloss:
                import rollback
                shadow = os.path.join(self.cluster.root, "shadow-%d" % i)
                os.makedirs(shadow, exist_ok=True)
                data = os.path.join(self.cluster.root, "broker-%d" % i, "data")
                os.makedirs(data, exist_ok=True)
                env = rollback.shim_env(shadow, [data])
            b = PortBroker(self.cluster.root, i, self.cluster.zk, "%ds" % self.session_s,
                           extra_env=env, local=self.mode == "single", conf_extra=conf)
            if env is not None:
                b.env = env
                b.shadow = env["POWERLOSS_DIR"]
            self.cluster.brokers[i] = b
            self.brokers[i] = b
        if self.mode != "single":
            self.cluster.zk.start()
        for b in self.brokers.values():
            b.spawn()
        for b in self.brokers.values():
            b.wait_ready()
        self.create_topic()

    def create_topic(self):
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": self.bootstrap(), "log_level": 2})
        cfg = {"segment.bytes": str(256 * 1024)}
        if self.rf > 1:
            cfg["min.insync.replicas"] = "2"

        if self.mode != "single":
            def agreed():
                md = a.list_topics(timeout=10)
                return set(md.brokers) == set(self.brokers) and md.controller_id in self.brokers
            wait_for("every broker registered and a controller", agreed, 60, 0.5)

        def create():
            fs = a.create_topics([NewTopic(TOPIC, self.partitions, self.rf, config=cfg)],
                                 request_timeout=60)
            try:
                fs[TOPIC].result(60)
            except Exception as e:  # noqa: B902 - the client's KafkaException
                if "already exists" not in str(e).lower() and "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise TestFailure("CreateTopics %s (%d partitions, replication factor %d): %r"
                                      % (TOPIC, self.partitions, self.rf, e))
            return True
        wait_for("topic %s created" % TOPIC, create, 60, 1.0)
        self.wait_healthy("the new topic", 90)

    def metadata(self):
        """(controller id, {partition: (leader, replicas, isr)}, live broker ids) from a live,
        running broker; None when none answers."""
        from confluent_kafka.admin import AdminClient
        for b in self.rng.sample(list(self.brokers.values()), len(self.brokers)):
            if not b.alive() or b.paused:
                continue
            a = AdminClient({"bootstrap.servers": "%s:%d" % (b.host, b.kafka_port),
                             "socket.timeout.ms": 3000, "log_level": 2})
            try:
                md = a.list_topics(topic=TOPIC, timeout=5)
            except Exception:  # noqa: B902 - KafkaException: try another broker
                continue
            t = md.topics.get(TOPIC)
            if t is None or t.error is not None:
                continue
            parts = {p.id: (p.leader, list(p.replicas), list(p.isrs))
                     for p in t.partitions.values()}
            return md.controller_id, parts, set(md.brokers)
        return None

    def healthy(self):
        md = self.metadata()
        if md is None:
            return None
        ctl, parts, live = md
        want = set(self.brokers)
        if len(parts) != self.partitions or live != want:
            return None
        if self.mode != "single" and ctl not in want:
            return None
        for leader, replicas, isr in parts.values():
            if leader not in want or set(isr) != set(replicas) or len(replicas) != self.rf:
                return None
        if self.mode != "single":
            # Metadata comes from the brokers' caches: also every broker's
            # own word that its ZooKeeper session is up and it is registered
            # (a broker still reconnecting after a ZooKeeper restart lists
            # everyone, but a SIGTERM now would leave its session behind).
            for b in self.brokers.values():
                m = b.metrics()
                if m.get("tributary_zookeeper_session_state") != 1 or \
                        m.get("tributary_cluster_registered") != 1:
                    return None
        return md

    def wait_healthy(self, after, timeout=120):
        t0 = time.monotonic()
        try:
            md = wait_for("every partition led with a full ISR after %s" % after, self.healthy,
                          timeout, 0.5)
        except TestFailure as e:
            log("not healed: %s" % e)
            self.unhealed.append(after)
            self.history.add(type="note", what="not-healed", after=after)
            return None
        return md, time.monotonic() - t0

    def pick_leader(self):
        md = self.healthy() or self.metadata()
        if md is None:
            return None, None
        ctl, parts, _live = md
        p = self.rng.randrange(self.partitions)
        leader = parts.get(p, (-1,))[0]
        return (leader if leader in self.brokers else None), ctl

    def restart_when_unregistered(self, b):
        """Starts b again once the others no longer list it (its session ended)."""
        if self.mode != "single":
            def gone():
                md = self.metadata()
                return md is not None and b.id not in md[2]
            try:
                wait_for("broker %d's registration gone" % b.id, gone,
                         self.session_s * 3 + 20, 0.3)
            except TestFailure as e:
                log("%s; starting it anyway" % e)
        for attempt in range(10):
            b.spawn()
            try:
                b.wait_ready()
                return
            except TestFailure as e:
                log("broker %d: %s; trying again" % (b.id, e))
                b.proc = None
                time.sleep(1)
        raise TestFailure("broker %d did not start again" % b.id)

    # ---- faults ------------------------------------------------------------------
    def fault(self, kind):
        h = self.history
        if kind in ("kill-leader", "kill-controller", "power-loss", "pause"):
            leader, ctl = self.pick_leader()
            target = ctl if kind == "kill-controller" and ctl in self.brokers else leader
            if target is None:
                target = self.rng.choice(list(self.brokers))
            b = self.brokers[target]
            h.add(type="nemesis", f=kind, target=target, phase="start")
            if kind == "pause":
                b.pause()
                time.sleep(self.session_s * 1.25 if self.mode != "single" else 2.0)
                b.resume()
            else:
                b.kill("KILL")
                if kind == "power-loss":
                    import rollback
                    st = rollback.rollback(b.shadow)
                    log("broker %d rolled back: %s" % (target, st))
                self.restart_when_unregistered(b)
            h.add(type="nemesis", f=kind, target=target, phase="end")
        elif kind == "zk-restart":
            if self.mode == "single":
                return
            h.add(type="nemesis", f=kind, target="zookeeper", phase="start")
            self.cluster.zk.kill()
            time.sleep(2.0)
            self.cluster.zk.start()
            h.add(type="nemesis", f=kind, target="zookeeper", phase="end")
        elif kind == "rolling":
            for b in list(self.brokers.values()):
                h.add(type="nemesis", f=kind, target=b.id, phase="start")
                b.kill("TERM")
                self.restart_when_unregistered(b)
                h.add(type="nemesis", f=kind, target=b.id, phase="end")
                self.wait_healthy("rolling restart of broker %d" % b.id, 120)
        elif kind == "zk-pause":
            if self.mode == "single":
                return
            # Longer than the session timeout: when it runs again, ZooKeeper
            # expires every session and every broker registers again.
            h.add(type="nemesis", f=kind, target="zookeeper", phase="start")
            os.kill(self.cluster.zk.proc.pid, signal.SIGSTOP)
            try:
                time.sleep(self.session_s * 1.25)
            finally:
                os.kill(self.cluster.zk.proc.pid, signal.SIGCONT)
            h.add(type="nemesis", f=kind, target="zookeeper", phase="end")
        else:
            raise ValueError(kind)

    # ---- the run -------------------------------------------------------------------
    def final_read(self):
        from confluent_kafka import Consumer, TopicPartition
        h = self.history
        c = Consumer({"bootstrap.servers": self.bootstrap(), "group.id": "checker-final",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "enable.partition.eof": True, "log_level": 2})
        ranges = {}
        for p in range(self.partitions):
            lo, hi = wait_for("watermarks of partition %d" % p,
                              lambda: c.get_watermark_offsets(TopicPartition(TOPIC, p),
                                                              timeout=10), 60, 1.0)
            ranges[p] = (lo, hi)
        c.assign([TopicPartition(TOPIC, p, lo) for p, (lo, hi) in ranges.items()])
        nxt = {p: lo for p, (lo, _hi) in ranges.items()}
        last_progress = time.monotonic()
        while any(nxt[p] < ranges[p][1] for p in ranges):
            if time.monotonic() - last_progress > 60:
                log("final read: no progress for 60 s at %s of %s" % (nxt, ranges))
                break
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                continue
            if m.offset() >= ranges[m.partition()][1]:
                continue
            h.add(type="drain", partition=m.partition(), offset=m.offset(),
                  value=m.value().decode("utf-8", "replace"))
            nxt[m.partition()] = max(nxt[m.partition()], m.offset() + 1)
            last_progress = time.monotonic()
        c.close()
        for p, (lo, hi) in ranges.items():
            if nxt[p] >= hi:
                h.add(type="drained", partition=p, start=lo, end=hi)
        log("final read: %s" % {p: "[%d, %d)" % r for p, r in ranges.items()})

    def replica_check(self):
        if len(self.brokers) < 2:
            return None
        for b in self.brokers.values():
            if b.alive():
                b.kill("TERM")
        p = subprocess.run([REPLICA_CHECK, "--json", "--topic", TOPIC]
                           + [b.data for b in self.brokers.values()],
                           capture_output=True, text=True, timeout=300)
        try:
            report = json.loads(p.stdout)
        except ValueError:
            report = {"stdout": p.stdout}
        self.history.add(type="replica-check", exit=p.returncode, report=report,
                         stderr=p.stderr[-2000:])
        log("replica check: exit %d %s" % (p.returncode, p.stderr.strip()))
        return p.returncode

    def execute(self, root=None):
        faults = self.fault_list or self.schedule.faults(self.rng)
        with self.cluster_ctx(root) as cl:
            self.setup()
            prods = [ProducerThread(self, i) for i in range(1, self.nproducers + 1)]
            cons = [ConsumerThread(self, i) for i in range(1, self.nconsumers + 1)]
            for t in prods + cons:
                t.start()
            try:
                time.sleep(self.settle_s)
                for i, kind in enumerate(faults):
                    if len(self.unhealed) >= 2:
                        log("the cluster did not heal twice: the %d faults left are skipped"
                            % (len(faults) - i))
                        self.history.add(type="note", what="faults-skipped",
                                         count=len(faults) - i)
                        break
                    t0 = time.monotonic()
                    self.fault(kind)
                    healed = self.wait_healthy("%s #%d" % (kind, i + 1))
                    acked = sum(1 for e in self.history.events if e["type"] == "ok")
                    log("fault %d/%d %s: healed %s in %.1fs after the fault's %.1fs; %d acks"
                        % (i + 1, len(faults), kind, "yes" if healed else "NO",
                           healed[1] if healed else -1, time.monotonic() - t0, acked))
                    time.sleep(self.settle_s)
            finally:
                for t in prods:
                    t.stop.set()
                for t in prods:
                    t.join(self.message_timeout_ms / 1000.0 + 60)
                for t in cons:
                    t.stop.set()
                for t in cons:
                    t.join(30)
            self.wait_healthy("the end of the faults", 120)
            self.final_read()
            self.replica_check()
            res = checker.analyze(self.history.events)
            res["unhealed"] = self.unhealed
            res["faults_run"] = faults
            res["root"] = cl.root
            # A failed verdict keeps the brokers' logs and data dirs.
            cl.keep = (os.environ.get("TRIB_KEEP_TMP") is not None or not res["ok"]
                       or bool(self.unhealed))
            if cl.keep:
                log("kept %s" % cl.root)
        return res

    def cluster_ctx(self, root):
        run = self

        class Ctx:
            def __enter__(self_):
                run.cluster = Cluster(brokers=0, session_timeout="%ds" % run.session_s,
                                      root=root)
                return run.cluster

            def __exit__(self_, et, e, tb):
                return run.cluster.__exit__(et, e, tb)
        return Ctx()
