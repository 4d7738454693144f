# SPDX-License-Identifier: Apache-2.0
"""The zookeeper backend: registration, controller election and its fencing.

One ZooKeeper and three collectors (session timeout 6 s) from
lib/zk_cluster.py. Checks, in order:
  1. all three register; Metadata (confluent-kafka) and DescribeCluster
     (tributary cluster describe) on every broker list all three and the
     same controller, which alone reports tributary_cluster_controller 1;
     they answer with one cluster id (/cluster/id);
  2. a fourth collector with a live broker's node id is refused: it exits
     with status 1 and says the id is registered;
  3. SIGKILL of the controller: the others elect a new controller with a
     higher controller epoch, and the dead broker leaves their metadata;
     restarted, it registers again as a non-controller;
  4. the controller SIGSTOPped past its session, then SIGCONT: it counts
     an expired session, is no longer the controller, a controller write
     it makes at its lost term's epoch (the TRIB_TEST_STALE_CONTROLLER_WRITE
     hook) is refused by the epoch check, and it registers again;
  5. ZooKeeper SIGKILLed and restarted on its port and data: the brokers
     notice the loss, reconnect, and all three are listed again with one
     controller.
Every wait is bounded; every process stops however the test ends.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, TestFailure, check_sanitizer_files, log  # noqa: E402
from zk_cluster import Broker, Cluster, check, wait_for  # noqa: E402

SESSION_S = 6
# Bounds, not expectations: a broker notices an expiry within the session
# timeout, plus ZooKeeper's tick granularity, plus a loaded 2-CPU machine.
FAILOVER_BOUND = SESSION_S * 4 + 20


def metric(b, name):
    return b.metrics().get(name)


def controllers_by_metrics(cl):
    return [b.id for b in cl.live() if not b.paused
            and metric(b, "tributary_cluster_controller") == 1]


def main():
    with Cluster(brokers=3, session_timeout="%ds" % SESSION_S,
                 extra_env={"TRIB_TEST_STALE_CONTROLLER_WRITE": "1"}) as cl:
        cl.start()
        ids = [1, 2, 3]

        # 1. Registration and one controller, through both APIs.
        ctl = cl.wait_controller(ids, via="describe")
        check(cl.wait_controller(ids, via="metadata") == ctl, "Metadata and DescribeCluster "
              "disagree on the controller")
        for b in cl.live():
            check(metric(b, "tributary_cluster_registered") == 1, "broker %d not registered" % b.id)
            check(metric(b, "tributary_zookeeper_session_state") == 1,
                  "broker %d not connected" % b.id)
        check(controllers_by_metrics(cl) == [ctl],
              "tributary_cluster_controller: %s, expected only %d" % (controllers_by_metrics(cl),
                                                                       ctl))
        cluster_ids = set(b.cluster_id for b in cl.live())
        check(len(cluster_ids) == 1 and None not in cluster_ids,
              "the brokers answer with cluster ids %s" % cluster_ids)
        epoch1 = metric(cl.broker(ctl), "tributary_cluster_controller_epoch")
        check(epoch1 >= 1, "controller epoch %s" % epoch1)
        log("step 1: brokers %s, controller %d at epoch %d" % (ids, ctl, epoch1))

        # 2. A second collector with a live broker's id is refused.
        other = [i for i in ids if i != ctl][0]
        dup = Broker(os.path.join(cl.root, "dup"), other, cl.zk, "%ds" % SESSION_S)
        dup.spawn()
        try:
            st = dup.proc.wait(timeout=60)
        except Exception:
            dup.proc.kill()
            dup.proc.wait()
            raise TestFailure("a second broker %d was not refused within 60s" % other)
        dup.proc = None
        check(st == 1, "the duplicate broker %d exited with status %s, not 1" % (other, st))
        check_sanitizer_files(dup.logs)
        check("already registered" in dup.log_text(),
              "the duplicate's log does not say the id is registered:\n" + dup.log_text())
        check(cl.wait_controller(ids) == ctl, "the refused duplicate changed the cluster")
        log("step 2: a second broker %d was refused" % other)

        # 3. SIGKILL of the controller.
        cl.broker(ctl).kill("KILL")
        rest = [i for i in ids if i != ctl]
        ctl2 = cl.wait_controller(rest, timeout=FAILOVER_BOUND)
        check(ctl2 in rest, "new controller %d" % ctl2)
        epoch2 = metric(cl.broker(ctl2), "tributary_cluster_controller_epoch")
        check(epoch2 > epoch1, "controller epoch %s after %s" % (epoch2, epoch1))
        check(cl.wait_controller(rest, via="metadata") == ctl2, "Metadata disagrees")
        log("step 3: broker %d killed; controller %d at epoch %d" % (ctl, ctl2, epoch2))
        cl.broker(ctl).start()
        check(cl.wait_controller(ids, timeout=FAILOVER_BOUND) == ctl2,
              "the restarted broker took the controllership")
        check(metric(cl.broker(ctl), "tributary_cluster_controller") == 0,
              "the restarted broker reports itself controller")

        # 4. The controller paused past its session.
        paused = cl.broker(ctl2)
        paused.pause()
        rest = [i for i in ids if i != ctl2]
        ctl3 = cl.wait_controller(rest, timeout=FAILOVER_BOUND)
        epoch3 = metric(cl.broker(ctl3), "tributary_cluster_controller_epoch")
        check(epoch3 > epoch2, "controller epoch %s after %s" % (epoch3, epoch2))
        log("step 4: broker %d paused; controller %d at epoch %d" % (ctl2, ctl3, epoch3))
        paused.resume()
        wait_for("broker %d sees its session expired" % ctl2,
                 lambda: metric(paused, "tributary_zookeeper_session_expirations_total") >= 1,
                 FAILOVER_BOUND)
        wait_for("broker %d's stale controller write refused" % ctl2,
                 lambda: metric(paused, "tributary_cluster_controller_writes_fenced_total") >= 1,
                 FAILOVER_BOUND)
        check(metric(paused, "tributary_test_stale_controller_writes_applied_total") == 0,
              "a write at the lost term's controller epoch was applied")
        check(cl.wait_controller(ids, timeout=FAILOVER_BOUND) == ctl3,
              "the woken ex-controller disturbed the controller")
        check(metric(paused, "tributary_cluster_controller") == 0,
              "the woken ex-controller still reports itself controller")
        check(metric(paused, "tributary_cluster_registered") == 1,
              "the woken ex-controller did not register again")
        check("was refused" in paused.log_text(), "no refusal in the log")
        check(controllers_by_metrics(cl) == [ctl3], "controllers by metrics: %s"
              % controllers_by_metrics(cl))
        log("step 4: broker %d woke, was fenced and registered again" % ctl2)

        # 5. ZooKeeper killed and restarted.
        cl.zk.kill()
        for b in cl.live():
            wait_for("broker %d notices ZooKeeper is gone" % b.id,
                     lambda: metric(b, "tributary_zookeeper_session_state") != 1, FAILOVER_BOUND)
        cl.zk.start()
        for b in cl.live():
            wait_for("broker %d reconnects" % b.id,
                     lambda: metric(b, "tributary_zookeeper_session_state") == 1 and
                     metric(b, "tributary_cluster_registered") == 1, FAILOVER_BOUND)
        ctl4 = cl.wait_controller(ids, timeout=FAILOVER_BOUND)
        check(controllers_by_metrics(cl) == [ctl4], "controllers by metrics: %s"
              % controllers_by_metrics(cl))
        log("step 5: ZooKeeper restarted; brokers %s back, controller %d" % (ids, ctl4))


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
