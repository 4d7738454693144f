# SPDX-License-Identifier: Apache-2.0
"""A follower whose high watermark lags is elected after it started following
again: epoch truncation keeps every acknowledged record (KIP-101, scenario 1).

KIP-101's first scenario: a follower restarts while its high watermark lags
the leader's, truncates its log to that high watermark, and the leader dies
before the follower fetched again; the follower is elected and acknowledged
records are gone. Here a follower starts over (truncation first) on a
restart and on every new leader epoch; a SIGKILLed and restarted broker is
taken out of every ISR by the controller (0607) and cannot be elected
before it caught up, so the follower that could be elected with a cut log
is an ISR member that starts following a new leader. The test steers that:

One ZooKeeper and three collectors; topic `kip101` (1 partition, replication
factor 3, min.insync.replicas 2) led by L with followers X and Y.
  1. acks=all records R0 reach every replica;
  2. X is paused (SIGSTOP, always shorter than the session timeout) and
     acks=all records W are sent: L and Y append them, but the high
     watermark waits for X, so Y's high watermark stays at the end of R0
     while its log holds W. Y is paused, and once L holds no fetch of Y
     (a parked one would carry the new high watermark to Y's socket) X
     resumes and fetches W: the high watermark passes W and every record
     of W is acknowledged;
  3. L is SIGKILLed, X paused again, and the test plays the controller
     (the partition's state znode, with CAS, as 0604 does): X leads at
     epoch e+1 with ISR [X, Y], what the controller writes when L dies.
     Y resumes and starts following X with its high watermark below W.
     X does not answer (paused): Y must not cut anything before the new
     leader tells it where its epochs end (never to the high watermark,
     as Kafka before KIP-101 did on becoming a follower);
  4. X is SIGKILLed while paused: the controller elects Y, the last live
     ISR member, at a higher epoch;
  5. L and X restart (both were hard-killed) and follow Y; acks=all
     records R3 are written. Y's log as leader must still hold W, and the
     three replicas converge with R0, W and R3.
KIP-101's second scenario (multiple hard failures; the replica that comes
back first leads and writes at offsets the other one also wrote): with
unclean election off a replica that returns first may lead only as the
last ISR member, and a committed record cannot be missing from it (fsync:
ack; 0631), so the other replica's extra records are above the high
watermark: an acks=1 tail, as in 0641, but here every replica fails.
  6. L and X are paused, Y (leading, all three in the ISR) takes acks=1
     records T, and all three are SIGKILLed;
  7. X restarts first and is elected (every ISR member is dead; it is the
     first to return), L restarts and joins, and acks=all records R4 are
     written at the offsets where Y held T;
  8. Y restarts and follows X: it must cut T where its epoch ends on X
     (OffsetForLeaderEpoch), not keep it.
Result (after 5 and after 8): the three replicas hold the same batches
(offsets, CRCs, bytes); every acks=all record is there exactly once on
every replica; no record of T is left; tributary-replica-check
(--upto end) finds the copies identical after SIGTERM.
"""
import glob
import json
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import BIN_DIR, SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "kip101"
STATE = CHROOT + "/brokers/topics/%s/partitions/0/state" % TOPIC
REPLICA_CHECK = os.path.join(BIN_DIR, "tributary-replica-check")


def state(zk):
    s = zk.get_json(STATE)
    return s[0] if s else None


def move(zk, leader, isr=None):
    """Plays the controller: `leader` leads at leader epoch + 1 (the ISR unchanged, or isr)."""
    st, ver = zk.get_json(STATE)
    new = dict(st, leader=leader, leader_epoch=st["leader_epoch"] + 1,
               isr=st["isr"] if isr is None else isr)
    check(zk.set(STATE, json.dumps(new).encode(), ver), "the test's state write was refused")
    return new["leader_epoch"]


def batches(broker):
    out = []
    d = os.path.join(broker.data, "%s-0" % TOPIC)
    for path in sorted(glob.glob(os.path.join(d, "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at + 61 <= len(data):
            base, length = struct.unpack(">qi", data[at:at + 12])
            if length <= 0 or at + 12 + length > len(data):
                break
            raw = data[at:at + 12 + length]
            out.append((base, base + struct.unpack(">i", raw[23:27])[0],
                        struct.unpack(">I", raw[17:21])[0], raw))
            at += 12 + length
    return out


def metric(b, name, **labels):
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % b.metrics_addr, timeout=5) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    key = "%s{%s}" % (name, want) if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def leo(b):
    return metric(b, "tributary_partition_log_end_offset", topic=TOPIC, partition=0)


def produce(bootstrap, values, acks):
    from confluent_kafka import Producer
    acked, failed = [], []
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 2,
                  "message.timeout.ms": 60000, "enable.idempotence": False,
                  "retries": 1000 if acks == "all" else 0})
    for i, v in enumerate(values):
        p.produce(TOPIC, value=v, partition=0,
                  callback=lambda err, m: (failed if err else acked).append(m.value()))
        if i % 20 == 19:
            p.flush(90)
    left = p.flush(90)
    return acked, failed, left


def values_in(broker):
    """Every record value in the broker's log up to its high watermark."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "chk-%f" % time.time(),
                  "enable.auto.commit": False})
    try:
        hw = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=15)[1]
        c.assign([TopicPartition(TOPIC, 0, 0)])
        out, pos = [], 0
        deadline = time.monotonic() + 60
        while pos < hw and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            out.append(m.value())
            pos = m.offset() + 1
        check(pos >= hw, "read %d of %d records" % (pos, hw))
        return out
    finally:
        c.close()


def log_has(b, text):
    return text in b.log_text()


def kill_stopped(b):
    """SIGKILL a paused broker without resuming it first (it must not run again)."""
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(timeout=30)
    b.proc = None
    b.paused = False
    log("broker %d killed by SIGKILL while paused" % b.id)


def gone(zk, brokers):
    """Waits until the brokers' registrations expired (a broker restarted before that
    finds its id taken and stops, as Kafka's does)."""
    for b in brokers:
        wait_for("broker %d's registration expires" % b.id,
                 lambda: zk.get(CHROOT + "/brokers/ids/%d" % b.id) is None, BOUND)


def converged(leader, others, acked, gone=None):
    """The replicas hold the leader's batches up to its high watermark, and each holds
    every acknowledged value once and no value starting with `gone`."""
    end = int(metric(leader, "tributary_partition_high_watermark", topic=TOPIC, partition=0))

    def same():
        ref = [x for x in batches(leader) if x[0] < end]
        if not ref or ref[-1][1] + 1 != end:
            return False
        return all([x for x in batches(b) if x[0] < end] == ref for b in others)
    wait_for("identical logs up to %d" % end, same, BOUND)
    for b in (leader,) + tuple(others):
        vals = values_in(b)
        missing = [v for v in acked if v not in vals]
        check(not missing, "%d acknowledged records missing on broker %d, e.g. %s"
              % (len(missing), b.id, missing[:3]))
        check(len(vals) == len(set(vals)), "duplicates on broker %d" % b.id)
        kept = [v for v in vals if gone and v.startswith(gone)]
        check(not kept, "broker %d kept %d records of the cut tail, e.g. %s"
              % (b.id, len(kept), kept[:2]))


def main():
    try:
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        raise Skip("confluent-kafka is missing")
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        cl.wait_controller(ids)
        a = AdminClient({"bootstrap.servers": cl.bootstrap(), "socket.timeout.ms": 10000})
        a.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})],
                        request_timeout=60)[TOPIC].result(timeout=90)
        zk = cl.zk.reader()
        try:
            st = wait_for("led with all three in the ISR", lambda: (
                lambda s: s and s["leader"] > 0 and len(s["isr"]) == 3 and s)(state(zk)), BOUND)
            L = cl.broker(st["leader"])
            X, Y = (cl.broker(i) for i in ids if i != L.id)
            e0 = st["leader_epoch"]
            log("leader L=%d at epoch %d, followers X=%d Y=%d" % (L.id, e0, X.id, Y.id))

            def hw(b):
                return metric(b, "tributary_partition_high_watermark", topic=TOPIC, partition=0)

            # 1. R0 everywhere, high watermarks included.
            r0 = [b"r0-%d" % i for i in range(200)]
            acked, failed, left = produce(cl.bootstrap(), r0, "all")
            check(len(acked) == len(r0) and not failed and left == 0,
                  "acks=all R0: %d acked, %d failed, %d left" % (len(acked), len(failed), left))
            end0 = int(leo(L))
            for b in (X, Y):
                wait_for("broker %d at %d, high watermark too" % (b.id, end0),
                         lambda: leo(b) == end0 and hw(b) == end0, BOUND)

            # 2. W: on L and Y, acknowledged once X fetched it; Y's high watermark lags.
            w = [b"w-%d" % i for i in range(200)]
            acked_w, failed_w = [], []
            p = Producer({"bootstrap.servers": L.bootstrap, "acks": "all", "linger.ms": 2,
                          "message.timeout.ms": 60000, "enable.idempotence": False,
                          "retries": 1000})
            endw = end0 + len(w)
            X.pause()
            try:
                for v in w:
                    p.produce(TOPIC, value=v, partition=0, callback=lambda err, m: (
                        failed_w if err else acked_w).append(m.value()))
                    p.poll(0)
                wait_for("W on L and Y", lambda: (p.poll(0) or True) and leo(L) == endw and
                         leo(Y) == endw, BOUND)
                y_hw = int(hw(Y))
                check(y_hw < endw and not acked_w, "Y's high watermark %d, log end %d, %d of W"
                      " acknowledged before X fetched it" % (y_hw, endw, len(acked_w)))
                Y.pause()
                # A fetch of Y parked on L would be answered, into Y's socket, when the
                # high watermark moves: wait until L has none (MaxWaitMs ends them; a
                # paused Y sends no new one). Parked acks=all requests count there too.
                wait_for("no follower's fetch parked on L", lambda: (
                    lambda m: m["tributary_fetch_parked"] == m["tributary_produce_waiting"])(
                        L.metrics()), BOUND)
            finally:
                X.resume()
            left_w = p.flush(60)
            check(len(acked_w) == len(w) and not failed_w and left_w == 0,
                  "acks=all W: %d acked, %d failed (%s), %d left"
                  % (len(acked_w), len(failed_w), failed_w[:2], left_w))
            log("W acknowledged at [%d, %d); Y (paused) holds it with high watermark %d"
                % (end0, endw, y_hw))

            # 3. L dies; X (paused) is made leader; Y starts following it.
            try:
                X.pause()
                L.kill("KILL")
                e1 = move(zk, X.id, [X.id, Y.id])
            finally:
                Y.resume()
            follow = "%s-0: following leader %d at epoch %d " % (TOPIC, X.id, e1)
            wait_for("Y follows X at epoch %d" % e1, lambda: log_has(Y, follow), BOUND)

            # 4. X dies before Y fetched from it: the controller elects Y.
            kill_stopped(X)
            st2 = wait_for("the controller elects Y", lambda: (
                lambda s: s and s["leader"] == Y.id and s["leader_epoch"] > e1 and s)(
                    state(zk)), BOUND)
            y_end = int(leo(Y))
            check(y_end >= endw, "Y leads at epoch %d with log end %d: %d acknowledged records"
                  " of W lost" % (st2["leader_epoch"], y_end, endw - y_end))
            log("Y leads at epoch %d with log end %d (W kept)" % (st2["leader_epoch"], y_end))

            # 5. L and X return (both hard-killed) and follow Y; R3.
            gone(zk, (L, X))
            for b in (L, X):
                b.spawn()
            for b in (L, X):
                b.wait_ready()
            wait_for("all three in the ISR", lambda: len((state(zk) or {}).get("isr", [])) == 3,
                     BOUND)
            r3 = [b"r3-%d" % i for i in range(200)]
            acked3, failed3, left3 = produce(cl.bootstrap(), r3, "all")
            check(len(acked3) == len(r3) and left3 == 0, "acks=all R3: %d acked, %d failed (%s),"
                  " %d left" % (len(acked3), len(failed3), failed3[:2], left3))
            converged(Y, (L, X), r0 + w + r3)
            log("every replica holds R0, W and R3 (%d records)" % (len(r0) + len(w) + len(r3)))

            # 6. KIP-101's second scenario: every replica fails; Y held an acks=1 tail T.
            end3 = int(leo(Y))
            t = [b"t-%d" % i for i in range(100)]
            L.pause()
            X.pause()
            try:
                acked_t, failed_t, _ = produce(Y.bootstrap, t, "1")
                check(len(acked_t) == len(t), "acks=1 T on Y: %d acked, %s failed"
                      % (len(acked_t), failed_t[:2]))
                end_t = int(leo(Y))
                Y.kill("KILL")
            finally:
                kill_stopped(L)
                kill_stopped(X)
            log("all three killed; Y held T at [%d, %d)" % (end3, end_t))
            e_y = state(zk)["leader_epoch"]

            # 7. X comes back first and leads; with L back, R4 at T's offsets.
            gone(zk, (L, X, Y))
            X.start()
            st4 = wait_for("X leads", lambda: (
                lambda s: s and s["leader"] == X.id and s["leader_epoch"] > e_y and s)(
                    state(zk)), BOUND)
            L.start()
            wait_for("L in the ISR", lambda: L.id in (state(zk) or {}).get("isr", []), BOUND)
            r4 = [b"r4-%d" % i for i in range(200)]
            acked4, failed4, left4 = produce("%s,%s" % (X.bootstrap, L.bootstrap), r4, "all")
            check(len(acked4) == len(r4) and left4 == 0, "acks=all R4: %d acked, %d failed "
                  "(%s), %d left" % (len(acked4), len(failed4), failed4[:2], left4))
            log("X leads at epoch %d; R4 acknowledged from offset %d" % (st4["leader_epoch"], end3))

            # 8. Y returns and cuts T by leader epoch.
            Y.start()
            wait_for("all three in the ISR", lambda: len((state(zk) or {}).get("isr", [])) == 3,
                     BOUND)
            converged(X, (L, Y), r0 + w + r3 + r4, b"t-")
            cut = "%s-0: truncated from %d to %d " % (TOPIC, end_t, end3)
            check(log_has(Y, cut), "Y's log has no line '%s'" % cut)
            log("Y cut T at %d, where its epoch %d ends on X" % (end3, e_y))
        finally:
            zk.close()

        for b in (L, X, Y):
            b.kill("TERM")
        p = subprocess.run([REPLICA_CHECK, "--upto", "end", "--topic", TOPIC] +
                           [b.data for b in (L, X, Y)], capture_output=True, text=True,
                           timeout=120)
        check(p.returncode == 0, "tributary-replica-check exit %d:\n%s%s"
              % (p.returncode, p.stdout, p.stderr))
        log("tributary-replica-check: %s" % (p.stdout.strip().splitlines() or ["identical"])[-1])


if __name__ == "__main__":
    try:
        main()
    except Skip as e:
        log("SKIP: %s" % e)
        sys.exit(SKIP)
    except TestFailure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
