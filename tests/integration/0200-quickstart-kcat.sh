#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Kafka quickstart with kcat: create quickstart-events (kcat cannot
# create topics, so the tributary CLI does), describe it (1 partition,
# leader 1, replicas [1], ISR [1]), write two events with `kcat -P`, read
# them back with `kcat -C -o beginning -e`.
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_require kcat
trib_harness_init
trib_collector_start

out=$TRIB_TMP/out
trib_cli topics create --topic quickstart-events >"$out" 2>&1 || trib_fail "create: $(cat "$out")"
trib_expect_eq "create output" "Created topic quickstart-events." "$(cat "$out")"

trib_cli topics describe --topic quickstart-events >"$out" 2>&1 || trib_fail "describe: $(cat "$out")"
cat "$out" >&2
trib_expect_grep "describe topic line" \
    '^Topic: quickstart-events[[:space:]].*PartitionCount: 1[[:space:]]+ReplicationFactor: 1' "$out"
trib_expect_grep "describe partition line" \
    'Topic: quickstart-events[[:space:]]+Partition: 0[[:space:]]+Leader: 1[[:space:]]+Replicas: 1[[:space:]]+Isr: 1[[:space:]]+LeaderEpoch: 0[[:space:]]+Status: ok$' "$out"
trib_expect_eq "partition lines" 1 "$(grep -c 'Partition: ' "$out")"

# kcat's metadata view agrees.
kcat -b "$TRIB_BOOTSTRAP" -L -t quickstart-events >"$out" 2>&1 || trib_fail "kcat -L: $(cat "$out")"
trib_expect_grep "kcat -L" 'partition 0, leader 1, replicas: 1, isrs: 1' "$out"

printf 'This is my first event\nThis is my second event\n' |
    kcat -b "$TRIB_BOOTSTRAP" -P -t quickstart-events -X acks=all 2>"$out" ||
    trib_fail "kcat -P: $(cat "$out")"

kcat -b "$TRIB_BOOTSTRAP" -C -t quickstart-events -o beginning -e -q >"$out" 2>"$out.err" ||
    trib_fail "kcat -C: $(cat "$out.err")"
trib_expect_eq "events read by kcat" $'This is my first event\nThis is my second event' "$(cat "$out")"

# The CLI reads kcat's events too.
trib_cli consume --topic quickstart-events --from-beginning --max 2 --timeout-ms 20000 \
    >"$out" 2>"$out.err" || trib_fail "consume: $(cat "$out.err")"
trib_expect_eq "events read by the CLI" $'This is my first event\nThis is my second event' "$(cat "$out")"
trib_pass
