# SPDX-License-Identifier: Apache-2.0
"""Event ids of buffered events: 5,000 syslog messages over TCP go through
the agent's disk buffer (1 MiB segments, checkpoint_interval 60s: its
ledger rarely moves) to a single-node collector whose
`postgres` sink writes them. Once the topic holds them all, the agent is
SIGKILLed and started again: the buffer replays what its ledger does not
say was acknowledged, records already delivered among them, as new records
with the same event.id (the buffer's instance, kept in
state_dir/buffer/instance, and the record's buffer id).

Default: the table holds exactly 5,000 rows, although the topic holds more
records (a run without a replay proves nothing and fails). With
--event-id off (test 0907) the replayed messages land twice.
"""
import importlib
import importlib.util
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tributary_harness import TestFailure, log, run_test  # noqa: E402

agentlib = importlib.import_module("0399_agentlib")
spec = importlib.util.spec_from_file_location(
    "sinklib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "0599_sinklib.py"))
sinklib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sinklib)

EVENT_ID = "--event-id=off" not in sys.argv[1:]
N = 5000
TOPIC = "agent.eid.syslog"
TMP = tempfile.mkdtemp(prefix="trib-0906.")
CONF = os.path.join(TMP, "collector.yaml")
SYSLOG = agentlib.free_port()
pg = sinklib.Postgres(TMP)


def counts():
    try:
        out = pg.sql("select count(*), count(distinct s) from (select "
                     "((regexp_match(value->>'message', 'seq=([0-9]+)'))[1])::int as s "
                     "from eid_syslog) t")
    except TestFailure:
        return (0, 0)
    return tuple(int(x) for x in out.split("|"))


def records(c):
    lag = sinklib.group_lag(c, "sink.pg")
    return sum(v[1] for v in lag.values()), lag


def main(c):
    sinklib.create_topic(c.bootstrap, TOPIC, 1)
    a = agentlib.Agent(c.tmp, c.bootstrap, """
  - name: syslog
    inputs:
      - {type: syslog, mode: tcp, address: "127.0.0.1:%d"}
    topic: %s
""" % (SYSLOG, TOPIC), output_extra="" if EVENT_ID else "  event_id: false\n")
    # the buffer's ledger is written on the checkpoint timer and when a segment is
    # deleted: neither happens before the kill, so the restart replays every record
    with open(a.conf) as f:
        text = f.read().replace("checkpoint_interval: 100ms", "checkpoint_interval: 60s")
    with open(a.conf, "w") as f:
        f.write(text + "buffer: {segment_size: 1MiB}\n")
    with agentlib.guard(a):
        a.start()
        agentlib.wait_listening(a)
        s = socket.create_connection(("127.0.0.1", SYSLOG), timeout=30)
        for i in range(N):
            s.sendall(b"<14>Nov 26 10:00:00 web-1 app[1]: replayed seq=%d\n" % i)
        s.close()
        sinklib.wait_for("every message in the topic", lambda: records(c)[0] >= N or records(c),
                         60, 0.1)
        a.stop("KILL")
        inst = open(os.path.join(a.state, "buffer", "instance")).read().split()
        log("killed; buffer instance file: %s" % inst)
        a.start()
        agentlib.wait_listening(a)
        # what the ledger did not cover is sent again: wait until the topic stops growing
        last = [-1]

        def settled():
            n = records(c)[0]
            done, last[0] = n > N and n == last[0], n
            return done or n
        sinklib.wait_for("the replay in the topic", settled, 60, 1.0)
        a.stop("TERM")
        if open(os.path.join(a.state, "buffer", "instance")).read().split()[:2] != inst[:2]:
            raise TestFailure("a SIGKILL changed the buffer's instance")
        sinklib.wait_for("every message in the table", lambda: counts()[1] == N or counts(), 60)

        def drained():
            total, lag = records(c)
            return (lag and all(v[2] == 0 for v in lag.values())) or lag
        sinklib.wait_for("the sink's lag 0", drained, 60)
        total = records(c)[0]
        rows, distinct = counts()
        log("event ids %s: %d records in the topic for %d messages; %d rows, %d distinct"
            % ("on" if EVENT_ID else "off", total, N, rows, distinct))
        if distinct != N:
            raise TestFailure("%d of %d messages in the table" % (distinct, N))
        if total <= N:
            raise TestFailure("nothing was replayed (%d records): the kill proved nothing"
                              % total)
        if EVENT_ID and rows != N:
            raise TestFailure("%d rows for %d messages: duplicates despite event ids"
                              % (rows, N))
        if not EVENT_ID and rows <= N:
            raise TestFailure("without event ids the replayed messages should land twice, "
                              "but the table has %d rows" % rows)
        log("%d rows for %d messages, %d replayed records" % (rows, N, total - N))


try:
    pg.start()
    sinklib.write_config(CONF, """
sinks:
  - name: pg
    type: postgres
    topics: ["%s"]
    batch: {max_records: 2000, max_bytes: 4MiB, linger: 100ms}
    retry: {initial: 100ms, max: 2s}
    options: {conninfo: "%s", table: eid_syslog, connect_timeout: 2s}
""" % (TOPIC, pg.conninfo()))
    run_test(main, extra_args=["-c", CONF])
finally:
    pg.kill()
    shutil.rmtree(TMP, ignore_errors=True)
