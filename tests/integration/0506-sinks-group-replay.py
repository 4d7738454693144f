# SPDX-License-Identifier: Apache-2.0
"""Sinks 0506: a running sink is a visible consumer group, its offsets are
not reset under it, and `tributary sinks replay` re-delivers while the
collector runs, against a real PostgreSQL 15 (started here).

- `tributary groups describe sink.pg` and kafka-python's KafkaAdminClient
  (list_consumer_groups, describe_consumer_groups) show the group Stable,
  protocol type "consumer", with one member sink-pg-1 whose decoded
  assignment is the 4 partitions of the topic.
- A consumer that tries to join sink.pg (confluent-kafka with its own
  assignors, kafka-python offering the sink's protocol name) gets
  INCONSISTENT_GROUP_PROTOCOL and takes no partition; a standalone commit
  (kafka-python, assigned partitions, generation -1) fails with
  UNKNOWN_MEMBER_ID, and `groups reset-offsets --execute` is refused with
  a message that points to `tributary sinks replay`; the committed offsets
  do not move.
- `tributary sinks replay --sink pg --to-earliest` while the collector runs
  re-delivers every record (tributary_sink_records_delivered_total and the
  postgres plugin's postgres_rows_duplicate counter grow by the number of
  records) and the table still has exactly one row per (topic, partition,
  offset); `--to-offset N --partition 1` re-delivers only partition 1 from
  N; `--to-time` with a time before the first record re-delivers
  everything again.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import CLI, TestFailure, log, run_test  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

N = 4000
TOPIC = "web.replay"
TMP = tempfile.mkdtemp(prefix="trib-0506.")
CONF = os.path.join(TMP, "collector.yaml")
pg = sinklib.Postgres(TMP)


def rows():
    try:
        return int(pg.sql("select count(*) from web_events"))
    except TestFailure:  # not created yet
        return 0


def metric(c, name, labels):
    """The value of the first sample of `name` whose labels contain every one of `labels`."""
    with urllib.request.urlopen("http://%s/metrics" % c.metrics, timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(l in line for l in labels):
            return int(float(line.split()[-1]))
    return 0


def delivered(c):
    return metric(c, "tributary_sink_records_delivered_total", ['sink="pg"'])


def duplicates(c):
    return metric(c, "tributary_sink_plugin_total", ['sink="pg"', 'name="postgres_rows_duplicate"'])


def replay(c, *args, check=True):
    p = subprocess.run([CLI, "sinks", "replay", "--sink", "pg", "--admin", c.metrics] +
                       list(args), capture_output=True, text=True, timeout=60)
    log("tributary sinks replay %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout,
                                                      p.stderr))
    if check and p.returncode != 0:
        raise TestFailure("sinks replay %s failed: %s" % (args, p.stderr))
    return p


def check_table():
    got = pg.sql("select count(*), count(distinct (topic, \"partition\", \"offset\")), "
                 "count(distinct (value->>'seq')) from web_events")
    if got != "%d|%d|%d" % (N, N, N):
        raise TestFailure("the table is not one row per record: count, keys, seqs = %s" % got)
    most = pg.sql("select coalesce(max(n), 0) from (select count(*) as n from web_events "
                  "group by topic, \"partition\", \"offset\") x")
    if most != "1":
        raise TestFailure("an offset has %s rows" % most)


def describe_cli(c):
    out = c.cli("groups", "describe", "--group", "sink.pg").stdout
    log("groups describe sink.pg:\n%s" % out)
    first = out.splitlines()[0]
    if "state Stable" not in first or "1 member" not in first or "consumer" not in first:
        raise TestFailure("groups describe: %r" % first)
    owned = re.findall(r"^%s\s+(\d+)\s+\S+\s+\S+\s+\S+\s+sink-pg-1\s" % re.escape(TOPIC), out,
                       re.M)
    if sorted(int(p) for p in owned) != [0, 1, 2, 3]:
        raise TestFailure("sink-pg-1 does not own the 4 partitions in describe: %s" % owned)


def describe_kafka_python(c):
    from kafka.admin import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=30000)
    try:
        groups = a.list_consumer_groups()
        if ("sink.pg", "consumer") not in groups:
            raise TestFailure("list_consumer_groups has no consumer group sink.pg: %s" % groups)
        (g,) = a.describe_consumer_groups(["sink.pg"])
        log("kafka-python describe_consumer_groups: %s" % (g,))
        if g.state != "Stable" or g.protocol_type != "consumer" or len(g.members) != 1:
            raise TestFailure("describe_consumer_groups: %s" % (g,))
        m = g.members[0]
        parts = sorted(p for t, ps in m.member_assignment.assignment if t == TOPIC for p in ps)
        if m.member_id != "sink-pg-1" or parts != [0, 1, 2, 3] or \
                m.member_metadata.subscription != [TOPIC] or not m.client_id:
            raise TestFailure("the sink's member as kafka-python decodes it: %s" % (m,))
        offs = a.list_consumer_group_offsets("sink.pg")
        return {(tp.topic, tp.partition): om.offset for tp, om in offs.items()}
    finally:
        a.close()


def outsider_join(c):
    from confluent_kafka import Consumer
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "sink.pg",
                     "session.timeout.ms": 6000, "enable.auto.commit": False})
    cons.subscribe([TOPIC])
    err = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and err is None:
        m = cons.poll(0.5)
        if m is not None and m.error():
            err = m.error()
        elif m is not None:
            raise TestFailure("a consumer that joined sink.pg got a record: %r" % m.offset())
    assignment = cons.assignment()
    cons.close()
    log("confluent-kafka joining sink.pg: %s, assignment %s" % (err, assignment))
    if err is None or "INCONSISTENT_GROUP_PROTOCOL" not in err.name() or assignment:
        raise TestFailure("joining a running sink's group: %s, assignment %s"
                          % (err, assignment))


def outsider_same_protocol(c):
    """kafka-python offering the sink's own protocol name must not get in either."""
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.errors import InconsistentGroupProtocolError

    class Impostor(RangePartitionAssignor):
        name = "tributary-sink"

    k = KafkaConsumer(TOPIC, bootstrap_servers=c.bootstrap, group_id="sink.pg",
                      enable_auto_commit=False, session_timeout_ms=6000,
                      partition_assignment_strategy=[Impostor])
    try:
        got = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and got is None:
            try:
                recs = k.poll(500)
                if recs or k.assignment():
                    got = "joined: assignment %s" % (k.assignment(),)
            except InconsistentGroupProtocolError as e:
                got = e
        log("kafka-python offering protocol tributary-sink: %r" % (got,))
        if not isinstance(got, InconsistentGroupProtocolError):
            raise TestFailure("a consumer offering the sink's protocol: %r" % (got,))
    finally:
        k.close()


def outsider_commit(c):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import CommitFailedError, UnknownMemberIdError
    from kafka.structs import OffsetAndMetadata
    k = KafkaConsumer(bootstrap_servers=c.bootstrap, group_id="sink.pg",
                      enable_auto_commit=False)
    try:
        tp = TopicPartition(TOPIC, 0)
        k.assign([tp])
        try:
            k.commit({tp: OffsetAndMetadata(0, None)})
        except (CommitFailedError, UnknownMemberIdError) as e:
            log("kafka-python standalone commit to sink.pg: %s" % type(e).__name__)
            return
        raise TestFailure("a standalone commit to a running sink's group was accepted")
    finally:
        k.close()


def wait_replayed(c, want_delivered, want_dups):
    def done():
        d, u = delivered(c), duplicates(c)
        lag = sinklib.group_lag(c, "sink.pg")
        return (d >= want_delivered and u >= want_dups and len(lag) == 4 and
                all(v[2] == 0 for v in lag.values())) or (d, u, lag)
    sinklib.wait_for("delivered >= %d, duplicates >= %d, lag 0" % (want_delivered, want_dups),
                     done, 120)


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 4)
    where = sinklib.produce_events(c.bootstrap, TOPIC, 0, N, 4)
    ends = {}
    for (p, o) in where:
        ends[p] = max(ends.get(p, 0), o + 1)
    sinklib.wait_for("%d rows" % N, lambda: rows() == N or rows(), 120)
    sinklib.wait_for("lag 0", lambda: (lambda lag: len(lag) == 4 and all(
        v[2] == 0 for v in lag.values()) or lag)(sinklib.group_lag(c, "sink.pg")), 60)

    describe_cli(c)
    committed = describe_kafka_python(c)
    if committed != {(TOPIC, p): ends[p] for p in range(4)}:
        raise TestFailure("committed offsets %s, want the log ends %s" % (committed, ends))

    outsider_join(c)
    outsider_same_protocol(c)
    outsider_commit(c)
    p = c.cli("groups", "reset-offsets", "--group", "sink.pg", "--topic", TOPIC,
              "--to-earliest", "--execute", check=False)
    log("groups reset-offsets --execute on sink.pg: exit %d: %s" % (p.returncode,
                                                                    p.stderr.strip()))
    if p.returncode == 0 or "running sink" not in p.stderr or \
            "tributary sinks replay --sink pg" not in p.stderr:
        raise TestFailure("reset-offsets on a running sink: exit %d, %r"
                          % (p.returncode, p.stderr))
    describe_cli(c)  # still the sink's, with its partitions
    if describe_kafka_python(c) != committed:
        raise TestFailure("the committed offsets moved under the running sink")

    # Replay everything: every record is delivered again and deduplicated by the table.
    d0, u0 = delivered(c), duplicates(c)
    t0 = time.monotonic()
    out = replay(c, "--to-earliest").stdout
    if "replaying 4 partitions" not in out:
        raise TestFailure("replay --to-earliest: %r" % out)
    wait_replayed(c, d0 + N, u0 + N)
    check_table()
    log("replay --to-earliest: delivered %d -> %d, duplicates %d -> %d in %.1f s (a figure, "
        "not a check); one row per offset"
        % (d0, delivered(c), u0, duplicates(c), time.monotonic() - t0))

    # One partition from an offset: only that range again.
    d1, u1 = delivered(c), duplicates(c)
    mid = ends[1] // 2
    replay(c, "--to-offset", str(mid), "--topic", TOPIC, "--partition", "1")
    wait_replayed(c, d1 + ends[1] - mid, u1 + ends[1] - mid)
    # At lag 0 every partition is committed: anything else replayed would show by now.
    if delivered(c) != d1 + ends[1] - mid or duplicates(c) != u1 + ends[1] - mid:
        raise TestFailure("replay of partition 1 from %d: delivered %d -> %d, want +%d"
                          % (mid, d1, delivered(c), ends[1] - mid))
    check_table()

    # By time: before the first record, so everything again.
    d2 = delivered(c)
    replay(c, "--to-time", "2000-01-01T00:00:00Z")
    wait_replayed(c, d2 + N, 0)
    check_table()

    # Bad requests are refused clearly.
    p = replay(c, "--to-earliest", "--topic", "no.such.topic", check=False)
    if p.returncode == 0 or "no partition of topic no.such.topic" not in p.stderr:
        raise TestFailure("replay of an unknown topic: %r" % p.stderr)
    p = subprocess.run([CLI, "sinks", "replay", "--sink", "nope", "--to-earliest", "--admin",
                        c.metrics], capture_output=True, text=True, timeout=60)
    if p.returncode == 0 or "no running sink named 'nope'" not in p.stderr:
        raise TestFailure("replay of an unknown sink: %r" % p.stderr)
    log("%d records, one row each after three replays" % N)


try:
    pg.start()
    sinklib.write_config(CONF, """
sinks:
  - name: pg
    type: postgres
    topics: ["%s"]
    batch: {max_records: 1000, linger: 100ms}
    retry: {initial: 100ms, max: 2s}
    options: {conninfo: "%s", table: web_events, connect_timeout: 2s}
""" % (TOPIC, pg.conninfo()))
    run_test(main, extra_args=["-c", CONF])
finally:
    pg.kill()
    shutil.rmtree(TMP, ignore_errors=True)
