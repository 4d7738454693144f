# SPDX-License-Identifier: Apache-2.0
"""A restarted broker never tells a client that an existing topic is unknown.
One ZooKeeper and three collectors (session timeout 6 s); topic `rs` (3
partitions, replication factor 3). Three times, a broker is stopped
(SIGTERM, so it can come back at once) and restarted, and the moment its
ready file appears a Metadata request (v1, raw) for `rs` goes straight to
it. A broker with the zookeeper backend starts with no topics and reads
them from ZooKeeper; answering before that would say UNKNOWN_TOPIC_OR_PARTITION
for a topic that exists, which librdkafka's producer takes as the topic
being gone (its queued messages fail). The answer must list `rs` with its
3 partitions and no topic error, and name the three brokers.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import SKIP, Skip, broker_available, log  # noqa: E402
from zk_cluster import Cluster, ZooKeeper, admin, check, wait_for  # noqa: E402

TOPIC = "rs"


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.o:self.o + n].decode()
        self.o += n
        return s


def metadata_v1(bootstrap, topic):
    """Metadata v1 for one topic: (broker ids, {topic: (error, [(partition error, index,
    leader)])})."""
    host, port = bootstrap.rsplit(":", 1)
    body = struct.pack(">hhi", 3, 1, 7) + kstr("t0647") + struct.pack(">i", 1) + kstr(topic)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            check(chunk, "the broker closed the connection before answering Metadata")
            head += chunk
        n = struct.unpack(">i", head)[0]
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            check(chunk, "the broker closed the connection inside its Metadata answer")
            data += chunk
    r = Reader(data)
    check(r.take(">i") == 7, "Metadata answer with another correlation id")
    brokers = []
    for _ in range(r.take(">i")):
        brokers.append(r.take(">i"))
        r.string()
        r.take(">i")
        r.string()
    r.take(">i")  # controller
    topics = {}
    for _ in range(r.take(">i")):
        err = r.take(">h")
        name = r.string()
        r.take(">b")
        parts = []
        for _ in range(r.take(">i")):
            perr, idx, leader = r.take(">hii")
            for _ in range(2):  # replicas, isr
                n = r.take(">i")
                r.o += 4 * n
            parts.append((perr, idx, leader))
        topics[name] = (err, parts)
    return sorted(brokers), topics


def main():
    try:
        broker_available()
        ZooKeeper.available()
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    with Cluster(brokers=3, session_timeout="6s") as c:
        c.start()
        c.wait_controller([1, 2, 3])
        from confluent_kafka.admin import NewTopic
        a = admin(c.bootstrap())
        fs = a.create_topics([NewTopic(TOPIC, 3, 3)])
        fs[TOPIC].result(30)
        for b in c.brokers.values():
            wait_for("broker %d lists %s" % (b.id, TOPIC),
                     lambda b=b: metadata_v1(b.bootstrap, TOPIC)[1].get(TOPIC, (3,))[0] == 0,
                     30)
        for rnd, node in enumerate([2, 3, 1], 1):
            b = c.broker(node)
            b.kill("TERM")
            b.spawn()
            deadline = time.monotonic() + 60
            while not os.path.exists(b.ready):
                check(b.alive(), "broker %d exited on its restart" % node)
                check(time.monotonic() < deadline, "broker %d wrote no ready file" % node)
                time.sleep(0.005)
            # The ready file holds the kafka line first: read it as soon as it is there.
            addr = None
            while addr is None:
                with open(b.ready) as f:
                    for line in f.read().splitlines():
                        w = line.split()
                        if len(w) == 2 and w[0] == "kafka":
                            addr = w[1]
                check(time.monotonic() < deadline, "broker %d's ready file has no kafka line"
                      % node)
            brokers, topics = metadata_v1(addr, TOPIC)
            err, parts = topics.get(TOPIC, (None, []))
            log("round %d: broker %d right after its restart: topic error %s, partitions %s, "
                "brokers %s" % (rnd, node, err, parts, brokers))
            check(err == 0, "round %d: broker %d answered Metadata for %s with error %s right "
                  "after its restart" % (rnd, node, TOPIC, err))
            check(sorted(p[1] for p in parts) == [0, 1, 2],
                  "round %d: broker %d listed partitions %s of %s" % (rnd, node, parts, TOPIC))
            b.wait_ready()
            c.wait_controller([1, 2, 3])
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
