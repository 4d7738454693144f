# SPDX-License-Identifier: Apache-2.0
"""A follower joins the ISR only past the leader epoch's start (KAFKA-7128): row 6
of the design's failure table.

Rule under test (the expansion guard, coll_follower_can_join): a leader
adds a follower to the ISR only when the follower's fetch offset has
reached both the high watermark and the offset where the leader's current
epoch began. Records below the epoch start and above the high watermark
may be acknowledged (acks=all) writes of the previous leader whose high
watermark the new leader has not learnt yet; a follower admitted without
them could be elected and lose them.

One ZooKeeper and four collectors; broker 1 starts first and is the
controller. Topic `guard` (1 partition, replicas [2, 1, 3, 4] in that
order, min.insync.replicas 2), replica.lag.time.max.ms 60 s everywhere so
no leader shrinks the ISR by lag; broker 3's session timeout is 60 s, the
others' 6 s.
  1. acks=all records A reach all four (log end = high watermark = H);
  2. broker 4 (F) is killed: the controller takes it out of the ISR; it
     holds [0, H);
  3. broker 3 (G) is paused: still registered, still in the ISR, its log
     ends at H and holds every leader's high watermark at H;
  4. the leader, broker 2, takes acks=1 records T: broker 1 fetches them,
     the high watermark stays at H (G); broker 2 is killed, and the
     controller elects broker 1 (the next ISR member of the assignment)
     at a new epoch that starts at X = H + |T|, with high watermark H;
  5. F restarts and follows broker 1 from H: at the high watermark, below
     the epoch start. It must join the ISR (the state znode) only with a
     fetch offset >= X: the leader's log line for the expansion says at
     which offset it let F in; and F's log end, read after the state
     znode first showed it in the ISR, is >= X;
  6. G resumes and catches up; all four hold the same log end.
Without the epoch-start condition broker 1 admits F at offset H, and the
checks of step 5 fail. Every wait is bounded; every process stops however
the test ends.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
BOUND = SESSION_S * 4 + 60
TOPIC = "guard"
N, L, G, F = 1, 2, 3, 4


def state(zk):
    s = zk.get_json(CHROOT + "/brokers/topics/%s/partitions/0/state" % TOPIC)
    return s[0] if s else None


def metric(b, name):
    v = b.metrics().get('%s{topic="%s",partition="0"}' % (name, TOPIC))
    return None if v is None else int(v)


def produce(bootstrap, n, tag, acks):
    from confluent_kafka import Producer
    acked, failed = [], []
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 2,
                  "message.timeout.ms": 60000, "enable.idempotence": False,
                  "retries": 1000 if acks == "all" else 0})
    for i in range(n):
        p.produce(TOPIC, value=b"%s-%d" % (tag, i), partition=0,
                  callback=lambda err, m: (failed if err else acked).append(m.offset()))
    left = p.flush(90)
    check(len(acked) == n and left == 0, "acks=%s: %d acked, %d failed, %d left"
          % (acks, len(acked), len(failed), left))


def main():
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        raise Skip("confluent-kafka is missing")
    with Cluster(brokers=4, session_timeout="%ds" % SESSION_S) as cl:
        for b in cl.brokers.values():
            with open(b.conf, "w") as f:
                f.write("cluster:\n  session_timeout: %ds\n  replica.lag.time.max.ms: 60000\n"
                        % (60 if b.id == G else SESSION_S))
        cl.zk.start()
        cl.broker(N).start()
        wait_for("broker %d is the controller" % N,
                 lambda: cl.broker(N).metrics().get("tributary_cluster_controller") == 1, BOUND)
        for i in (L, G, F):
            cl.broker(i).start()
        check(cl.wait_controller([1, 2, 3, 4]) == N, "the controller moved")
        a = AdminClient({"bootstrap.servers": cl.broker(N).bootstrap, "socket.timeout.ms": 10000})
        a.create_topics([NewTopic(TOPIC, 1, replica_assignment=[[L, N, G, F]],
                                  config={"min.insync.replicas": "2"})],
                        request_timeout=60)[TOPIC].result(timeout=90)
        zk = cl.zk.reader()
        try:
            st = wait_for("led by %d with all four in the ISR" % L, lambda: (
                lambda s: s and s["leader"] == L and len(s["isr"]) == 4 and s)(state(zk)), BOUND)

            # 1. Committed records everywhere.
            produce(cl.broker(L).bootstrap, 300, b"a", "all")
            H = metric(cl.broker(L), "tributary_partition_high_watermark")
            for i in (N, G, F):
                wait_for("broker %d at %d" % (i, H), lambda: metric(
                    cl.broker(i), "tributary_partition_log_end_offset") == H, BOUND)
            log("leader %d at epoch %d, high watermark %d on all four" % (L, st["leader_epoch"], H))

            # 2. F dies and leaves the ISR.
            cl.broker(F).kill("KILL")
            wait_for("broker %d out of the ISR" % F,
                     lambda: F not in (state(zk) or {"isr": [F]})["isr"], BOUND)

            # 3.-4. G holds the high watermark; L takes a tail and dies.
            cl.broker(G).pause()
            try:
                produce(cl.broker(L).bootstrap, 200, b"t", "1")
                X = metric(cl.broker(L), "tributary_partition_log_end_offset")
                wait_for("broker %d fetched the tail up to %d" % (N, X), lambda: metric(
                    cl.broker(N), "tributary_partition_log_end_offset") == X, BOUND)
                check(metric(cl.broker(L), "tributary_partition_high_watermark") == H,
                      "the high watermark moved past %d with broker %d paused" % (H, G))
                cl.broker(L).kill("KILL")
                st1 = wait_for("broker %d leads" % N, lambda: (
                    lambda s: s and s["leader"] == N and s)(state(zk)), BOUND)
                check(G in st1["isr"] and F not in st1["isr"], "ISR %s" % st1["isr"])
                hw_n = wait_for("broker %d's leader epoch %d" % (N, st1["leader_epoch"]), lambda: (
                    "leader at epoch %d from offset %d" % (st1["leader_epoch"], X)
                    in cl.broker(N).log_text()) and
                    [metric(cl.broker(N), "tributary_partition_high_watermark")], BOUND)[0]
                check(hw_n < X, "broker %d's high watermark %d is not below its epoch start %d"
                      % (N, hw_n, X))
                log("broker %d leads at epoch %d from offset %d, high watermark %d"
                    % (N, st1["leader_epoch"], X, hw_n))

                # 5. F comes back below the epoch start.
                cl.broker(F).start()

                def joined():
                    s = state(zk)
                    if s and F in s["isr"]:
                        return [metric(cl.broker(F), "tributary_partition_log_end_offset")]
                    return None
                leo_f = wait_for("broker %d back in the ISR" % F, joined, BOUND, 0.02)[0]
                check(leo_f is not None and leo_f >= X, "broker %d joined the ISR with log end "
                      "%s, below the epoch start %d" % (F, leo_f, X))
                pat = re.compile(r"%s-0: broker %d caught up: offset (\d+) \(high watermark "
                                 r"(\d+), epoch (\d+) from offset (\d+)\)" % (TOPIC, F))
                seen = [tuple(map(int, m)) for m in pat.findall(cl.broker(N).log_text())]
                check(seen, "broker %d logged no expansion for broker %d" % (N, F))
                for off, hw, epoch, start in seen:
                    check(start == X and off >= start and off >= hw,
                          "broker %d let broker %d in at offset %d (high watermark %d, epoch %d "
                          "from offset %d)" % (N, F, off, hw, epoch, start))
                log("broker %d joined at offset %d (epoch start %d, high watermark %d); its log "
                    "end was %d when the state znode showed it" % (F, seen[-1][0], X, seen[-1][1],
                                                                    leo_f))
            finally:
                if cl.broker(G).paused:
                    cl.broker(G).resume()

            # 6. Everyone alive converges.
            cl.broker(L).start()
            wait_for("all four in the ISR", lambda: len((state(zk) or {"isr": []})["isr"]) == 4,
                     BOUND)
            end = metric(cl.broker(N), "tributary_partition_log_end_offset")
            wait_for("every replica at %d" % end, lambda: all(
                metric(b, "tributary_partition_log_end_offset") == end and
                metric(b, "tributary_partition_high_watermark") == end
                for b in cl.brokers.values()), BOUND)
        finally:
            zk.close()


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
