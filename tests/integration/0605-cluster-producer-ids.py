# SPDX-License-Identifier: Apache-2.0
"""Producer ids on the zookeeper backend: blocks reserved in ZooKeeper, unique
across the brokers.

One ZooKeeper and three collectors. Checks:
  1. InitProducerId (raw, v0) asked 1500 times on each broker, round-robin,
     hands out 4500 distinct ids, each broker's ids in blocks of 1000 that
     no other broker uses; an answer while a block is being reserved is
     COORDINATOR_LOAD_IN_PROGRESS (retried here, as clients do) and never
     another error;
  2. /latest_producer_id_block holds Kafka's JSON (version 1, broker,
     block_start/block_end as strings) naming the highest block reserved;
  3. a broker SIGKILLed and restarted reserves a new block: none of its new
     ids was handed out before.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "broker"))
from kafka_raw import Conn  # noqa: E402
from tributary_harness import SKIP, Skip, TestFailure, log  # noqa: E402
from zk_cluster import CHROOT, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
COORDINATOR_LOAD_IN_PROGRESS = 14


def next_pid(conn):
    """One id, retrying COORDINATOR_LOAD_IN_PROGRESS (bounded)."""
    def once():
        err, pid, epoch = conn.init_producer_id()
        if err == COORDINATOR_LOAD_IN_PROGRESS:
            return None
        check(err == 0 and pid >= 0 and epoch == 0, "InitProducerId: error %d, id %d, epoch %d"
              % (err, pid, epoch))
        return pid + 1  # a true value for pid 0
    return wait_for("a producer id", once, 60, 0.05) - 1


def main():
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S) as cl:
        cl.start()
        ids = [1, 2, 3]
        cl.wait_controller(ids)
        conns = {i: Conn(cl.broker(i).bootstrap) for i in ids}
        got = {i: [] for i in ids}
        try:
            for _ in range(1500):
                for i in ids:
                    got[i].append(next_pid(conns[i]))
        finally:
            for c in conns.values():
                c.close()
        allp = [p for i in ids for p in got[i]]
        check(len(set(allp)) == len(allp), "%d ids handed out twice"
              % (len(allp) - len(set(allp))))
        blocks = {i: {p // 1000 for p in got[i]} for i in ids}
        log("blocks per broker: %s" % {i: sorted(b) for i, b in blocks.items()})
        for i in ids:
            for j in ids:
                check(i == j or not (blocks[i] & blocks[j]), "brokers %d and %d share a block"
                      % (i, j))
        zk = cl.zk.reader()
        try:
            last, _ = zk.get_json(CHROOT + "/latest_producer_id_block")
            log("/latest_producer_id_block: %s" % last)
            check(last["version"] == 1 and last["broker"] in ids and
                  isinstance(last["block_start"], str) and
                  int(last["block_end"]) - int(last["block_start"]) == 999 and
                  int(last["block_end"]) >= max(allp), "latest block: %s" % last)

            # 3. A restarted broker never reuses an id (restarted once its old session is
            # gone: until then its id is registered and a new process is refused).
            cl.broker(2).kill("KILL")
            wait_for("broker 2's registration expires",
                     lambda: zk.get(CHROOT + "/brokers/ids/2") is None, SESSION_S * 4 + 30)
        finally:
            zk.close()
        cl.broker(2).start()
        c = Conn(cl.broker(2).bootstrap)
        try:
            fresh = [next_pid(c) for _ in range(50)]
        finally:
            c.close()
        check(not (set(fresh) & set(allp)), "the restarted broker reissued ids: %s"
              % sorted(set(fresh) & set(allp))[:5])
        log("after the restart broker 2 hands out %d.." % min(fresh))


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
