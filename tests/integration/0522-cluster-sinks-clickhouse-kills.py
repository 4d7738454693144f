# SPDX-License-Identifier: Apache-2.0
"""Sinks 0522: test 0521's cluster scenario with the `clickhouse` sink of
test 0502 (Debian's clickhouse-server, a ReplacingMergeTree keyed on
(topic, partition, offset)).

Every collector of a three-collector cluster runs the sink `ch` (one group
sink.ch); 48,000 records: 12,000, then 12,000 while ClickHouse is stopped
for 20 s, then four rounds in which the collector leading the most
partitions is SIGKILLed (each collector once) or, in the last, stopped by
SIGTERM while records arrive. At the end SELECT ... FINAL has every
(topic, partition, offset) exactly once with its own value, and the
committed offsets of sink.ch are every partition's log end (lag 0).
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from zk_cluster import check, run  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "scenario0521", os.path.join(HERE, "0521-cluster-sinks-postgres-kills.py"))
s0521 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(s0521)
log = s0521.log
sinklib = s0521.sinklib


class ChWarehouse:
    name = "ClickHouse"
    group = "sink.ch"
    bad = {}

    def start(self, root):
        self.ch = sinklib.ClickHouse(root).start()

    def sink_yaml(self):
        return """
sinks:
  - name: ch
    type: clickhouse
    topics: ["web.access"]
    batch: {max_records: 2000, linger: 100ms}
    retry: {initial: 100ms, max: 2s}
    options: {url: "%s", table: ev, connect_timeout: 1s}
""" % self.ch.url()

    def stop(self):
        self.ch.stop()

    def restart(self):
        self.ch.start()

    def kill(self):
        if getattr(self, "ch", None):
            self.ch.stop()

    def rows(self):
        try:
            return int(self.ch.sql("SELECT uniqExact(topic, partition, offset) FROM ev FINAL"))
        except (OSError, ValueError):
            return 0

    def check_table(self, where, n):
        got = self.ch.sql("SELECT count(), uniqExact(topic, partition, offset) FROM ev FINAL")
        raw = self.ch.sql("SELECT count() FROM ev")
        log("ClickHouse: FINAL count, distinct keys = %s; %s rows before merges" % (got, raw))
        check(got == "%d\t%d" % (n, n), "FINAL is not every record once: %s" % got)
        seqs = self.ch.sql("SELECT count(DISTINCT visitParamExtractUInt(value, 'seq')), "
                           "min(visitParamExtractUInt(value, 'seq')), "
                           "max(visitParamExtractUInt(value, 'seq')) FROM ev FINAL")
        check(seqs == "%d\t0\t%d" % (n, n - 1), "ClickHouse values: %s" % seqs)
        for (p, o), seq in list(where.items())[::997]:
            v = self.ch.sql("SELECT visitParamExtractUInt(value, 'seq') FROM ev FINAL WHERE "
                            "topic = '%s' AND partition = %d AND offset = %d" % (s0521.TOPIC, p, o))
            check(v == str(seq), "(%d, %d): seq %r, want %d" % (p, o, v, seq))


run(lambda: s0521.scenario(ChWarehouse()))
