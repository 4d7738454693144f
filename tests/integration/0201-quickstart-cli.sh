#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Kafka quickstart entirely with the tributary CLI: create, describe,
# write two events, read them (and kcat reads what the CLI wrote).
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_harness_init
trib_collector_start

out=$TRIB_TMP/out
trib_cli topics create --topic quickstart-events >"$out" 2>&1 || trib_fail "create: $(cat "$out")"
trib_expect_eq "create output" "Created topic quickstart-events." "$(cat "$out")"
trib_cli topics describe --topic quickstart-events >"$out" 2>&1 || trib_fail "describe: $(cat "$out")"
cat "$out" >&2
trib_expect_grep "describe" \
    'Partition: 0[[:space:]]+Leader: 1[[:space:]]+Replicas: 1[[:space:]]+Isr: 1[[:space:]]+LeaderEpoch: 0[[:space:]]+Status: ok$' "$out"
trib_expect_grep "describe" 'PartitionCount: 1[[:space:]]+ReplicationFactor: 1' "$out"

printf 'This is my first event\nThis is my second event\n' |
    trib_cli produce --topic quickstart-events 2>"$out.err" || trib_fail "produce: $(cat "$out.err")"

trib_cli consume --topic quickstart-events --from-beginning --max 2 --timeout-ms 20000 \
    >"$out" 2>"$out.err" || trib_fail "consume: $(cat "$out.err")"
trib_expect_eq "events" $'This is my first event\nThis is my second event' "$(cat "$out")"
trib_expect_grep "consumer summary" '^Processed a total of 2 messages$' "$out.err"

# --exit-at-end stops at the end of the log, like kcat -e.
trib_cli consume --topic quickstart-events --offset earliest --exit-at-end >"$out" 2>"$out.err" ||
    trib_fail "consume -e: $(cat "$out.err")"
trib_expect_eq "events (-e)" $'This is my first event\nThis is my second event' "$(cat "$out")"

if command -v kcat >/dev/null 2>&1; then
    kcat -b "$TRIB_BOOTSTRAP" -C -t quickstart-events -o beginning -e -q >"$out" 2>"$out.err" ||
        trib_fail "kcat -C: $(cat "$out.err")"
    trib_expect_eq "kcat reads the CLI's events" $'This is my first event\nThis is my second event' "$(cat "$out")"
fi
trib_pass
