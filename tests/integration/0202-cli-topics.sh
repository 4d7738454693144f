#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tributary topics and cluster: create with partitions and --config, list,
# describe (partitions, leader, replicas, ISR, configs), alter partitions and
# configs, delete; the documented exit codes and Kafka error names.
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_harness_init
trib_collector_start

out=$TRIB_TMP/out
run() { # run EXPECTED_EXIT ARGS…: the CLI's exit code must be EXPECTED_EXIT
    local want=$1 st=0
    shift
    trib_cli "$@" >"$out" 2>"$out.err" || st=$?
    [ "$st" -eq "$want" ] || trib_fail "tributary $*: exit $st, expected $want: $(cat "$out" "$out.err")"
}

run 0 topics create --topic t6 --partitions 6 --replication-factor 1 --config retention.ms=3600000
trib_expect_eq "create" "Created topic t6." "$(cat "$out")"
run 1 topics create --topic t6 --partitions 6
trib_expect_grep "already exists" 'TOPIC_ALREADY_EXISTS' "$out.err"
run 0 topics create --topic t6 --partitions 6 --if-not-exists
run 0 topics create --topic other

run 0 topics list
trib_expect_grep "list" '^t6$' "$out"
trib_expect_grep "list" '^other$' "$out"

run 0 topics describe --topic t6
cat "$out" >&2
trib_expect_grep "describe" '^Topic: t6[[:space:]]+TopicId: [A-Za-z0-9_-]+[[:space:]]+PartitionCount: 6[[:space:]]+ReplicationFactor: 1[[:space:]]+Configs: .*retention.ms=3600000' "$out"
for p in 0 1 2 3 4 5; do
    trib_expect_grep "partition $p" "Partition: $p[[:space:]]+Leader: 1[[:space:]]+Replicas: 1[[:space:]]+Isr: 1[[:space:]]+LeaderEpoch: 0[[:space:]]+Status: ok\$" "$out"
done

run 0 topics alter --topic t6 --partitions 8 --config retention.ms=7200000 --config cleanup.policy=delete
run 0 topics describe --topic t6
trib_expect_grep "altered partitions" 'PartitionCount: 8' "$out"
trib_expect_grep "altered config" 'retention.ms=7200000' "$out"
run 0 topics alter --topic t6 --delete-config retention.ms
run 0 topics describe --topic t6
grep -q 'retention.ms=7200000' "$out" && trib_fail "retention.ms still set after --delete-config"
run 1 topics alter --topic t6 --partitions 2
trib_expect_grep "shrinking" 'INVALID_PARTITIONS' "$out.err"

run 0 topics describe
trib_expect_grep "describe all" '^Topic: other' "$out"
trib_expect_grep "describe all" '^Topic: t6' "$out"

run 0 topics delete --topic other
trib_expect_eq "delete" "Deleted topic other." "$(cat "$out")"
run 0 topics list
grep -q '^other$' "$out" && trib_fail "deleted topic still listed"
run 1 topics describe --topic other
trib_expect_grep "unknown topic" 'UNKNOWN_TOPIC_OR_PARTITION' "$out.err"
run 1 topics delete --topic other
run 0 topics delete --topic other --if-exists
run 1 consume --topic nosuchtopic --max 1 --timeout-ms 1000
trib_expect_grep "consume unknown" 'UNKNOWN_TOPIC_OR_PARTITION' "$out.err"

run 0 cluster describe --api-versions
cat "$out" >&2
trib_expect_grep "cluster" '^Controller: 1$' "$out"
trib_expect_grep "cluster" "^  1[[:space:]]+$TRIB_BOOTSTRAP" "$out"
trib_expect_grep "api versions" 'Produce' "$out"

# Usage errors (2), an unreachable broker (3), nothing arriving in time (4).
run 2 topics create
run 2 produce --topic t6 --acks 7
run 2 consume
st=0
"$TRIB_CLI" topics list --bootstrap 127.0.0.1:1 >"$out" 2>&1 || st=$?
trib_expect_eq "unreachable broker exit code" 3 "$st"
trib_expect_grep "unreachable broker" 'cannot connect to 127.0.0.1:1' "$out"
run 4 consume --topic t6 --from-beginning --max 1 --timeout-ms 500
trib_pass
