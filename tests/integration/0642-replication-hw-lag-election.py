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
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from replication_scenario import (leo, log_has, metric, move, need_confluent_kafka,  # noqa: E402
                                  produce, replica_check, same_logs, start_topic, state, values_in)
from tributary_harness import log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, run, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "kip101"


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
    wait_for("identical logs up to %d" % end,
             lambda: same_logs((leader,) + tuple(others), TOPIC, end), BOUND)
    for b in (leader,) + tuple(others):
        vals = values_in(b, TOPIC)
        missing = [v for v in acked if v not in vals]
        check(not missing, "%d acknowledged records missing on broker %d, e.g. %s"
              % (len(missing), b.id, missing[:3]))
        check(len(vals) == len(set(vals)), "duplicates on broker %d" % b.id)
        kept = [v for v in vals if gone and v.startswith(gone)]
        check(not kept, "broker %d kept %d records of the cut tail, e.g. %s"
              % (b.id, len(kept), kept[:2]))


def main():
    need_confluent_kafka()
    from confluent_kafka import Producer
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        ids = start_topic(cl, TOPIC)
        zk = cl.zk.reader()
        try:
            st = wait_for("led with all three in the ISR", lambda: (
                lambda s: s and s["leader"] > 0 and len(s["isr"]) == 3 and s)(state(zk, TOPIC)),
                BOUND)
            L = cl.broker(st["leader"])
            X, Y = (cl.broker(i) for i in ids if i != L.id)
            e0 = st["leader_epoch"]
            log("leader L=%d at epoch %d, followers X=%d Y=%d" % (L.id, e0, X.id, Y.id))

            def hw(b):
                return metric(b, "tributary_partition_high_watermark", topic=TOPIC, partition=0)

            # 1. R0 everywhere, high watermarks included.
            r0 = [b"r0-%d" % i for i in range(200)]
            acked, failed, left = produce(cl.bootstrap(), TOPIC, r0, "all")
            check(len(acked) == len(r0) and not failed and left == 0,
                  "acks=all R0: %d acked, %d failed, %d left" % (len(acked), len(failed), left))
            end0 = int(leo(L, TOPIC))
            for b in (X, Y):
                wait_for("broker %d at %d, high watermark too" % (b.id, end0),
                         lambda: leo(b, TOPIC) == end0 and hw(b) == end0, BOUND)

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
                wait_for("W on L and Y", lambda: (p.poll(0) or True) and leo(L, TOPIC) == endw and
                         leo(Y, TOPIC) == endw, BOUND)
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
                e1 = move(zk, TOPIC, X.id, [X.id, Y.id])
            finally:
                Y.resume()
            follow = "%s-0: following leader %d at epoch %d " % (TOPIC, X.id, e1)
            wait_for("Y follows X at epoch %d" % e1, lambda: log_has(Y, follow), BOUND)

            # 4. X dies before Y fetched from it: the controller elects Y.
            kill_stopped(X)
            st2 = wait_for("the controller elects Y", lambda: (
                lambda s: s and s["leader"] == Y.id and s["leader_epoch"] > e1 and s)(
                    state(zk, TOPIC)), BOUND)
            y_end = int(leo(Y, TOPIC))
            check(y_end >= endw, "Y leads at epoch %d with log end %d: %d acknowledged records"
                  " of W lost" % (st2["leader_epoch"], y_end, endw - y_end))
            log("Y leads at epoch %d with log end %d (W kept)" % (st2["leader_epoch"], y_end))

            # 5. L and X return (both hard-killed) and follow Y; R3.
            gone(zk, (L, X))
            for b in (L, X):
                b.spawn()
            for b in (L, X):
                b.wait_ready()
            wait_for("all three in the ISR",
                     lambda: len((state(zk, TOPIC) or {}).get("isr", [])) == 3, BOUND)
            r3 = [b"r3-%d" % i for i in range(200)]
            acked3, failed3, left3 = produce(cl.bootstrap(), TOPIC, r3, "all")
            check(len(acked3) == len(r3) and left3 == 0, "acks=all R3: %d acked, %d failed (%s),"
                  " %d left" % (len(acked3), len(failed3), failed3[:2], left3))
            converged(Y, (L, X), r0 + w + r3)
            log("every replica holds R0, W and R3 (%d records)" % (len(r0) + len(w) + len(r3)))

            # 6. KIP-101's second scenario: every replica fails; Y held an acks=1 tail T.
            end3 = int(leo(Y, TOPIC))
            t = [b"t-%d" % i for i in range(100)]
            L.pause()
            X.pause()
            try:
                acked_t, failed_t, _ = produce(Y.bootstrap, TOPIC, t, "1")
                check(len(acked_t) == len(t), "acks=1 T on Y: %d acked, %s failed"
                      % (len(acked_t), failed_t[:2]))
                end_t = int(leo(Y, TOPIC))
                Y.kill("KILL")
            finally:
                kill_stopped(L)
                kill_stopped(X)
            log("all three killed; Y held T at [%d, %d)" % (end3, end_t))
            e_y = state(zk, TOPIC)["leader_epoch"]

            # 7. X comes back first and leads; with L back, R4 at T's offsets.
            gone(zk, (L, X, Y))
            X.start()
            st4 = wait_for("X leads", lambda: (
                lambda s: s and s["leader"] == X.id and s["leader_epoch"] > e_y and s)(
                    state(zk, TOPIC)), BOUND)
            L.start()
            wait_for("L in the ISR", lambda: L.id in (state(zk, TOPIC) or {}).get("isr", []), BOUND)
            r4 = [b"r4-%d" % i for i in range(200)]
            acked4, failed4, left4 = produce("%s,%s" % (X.bootstrap, L.bootstrap), TOPIC, r4, "all")
            check(len(acked4) == len(r4) and left4 == 0, "acks=all R4: %d acked, %d failed "
                  "(%s), %d left" % (len(acked4), len(failed4), failed4[:2], left4))
            log("X leads at epoch %d; R4 acknowledged from offset %d" % (st4["leader_epoch"], end3))

            # 8. Y returns and cuts T by leader epoch.
            Y.start()
            wait_for("all three in the ISR",
                     lambda: len((state(zk, TOPIC) or {}).get("isr", [])) == 3, BOUND)
            converged(X, (L, Y), r0 + w + r3 + r4, b"t-")
            cut = "%s-0: truncated from %d to %d " % (TOPIC, end_t, end3)
            check(log_has(Y, cut), "Y's log has no line '%s'" % cut)
            log("Y cut T at %d, where its epoch %d ends on X" % (end3, e_y))
        finally:
            zk.close()

        replica_check((L, X, Y), TOPIC)


if __name__ == "__main__":
    run(main)
