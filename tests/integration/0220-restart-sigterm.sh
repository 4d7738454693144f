#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Acknowledged records survive a clean restart: the tributary CLI (acks=-1)
# and kcat (acks=all) write 10,000 keyed records each into 6-partition
# topics, the collector is stopped with SIGTERM (it must exit 0) and started
# again on the same data dir; every record is read back exactly once, in
# per-key order, and new records append after the old ones.
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_require kcat
trib_harness_init
trib_collector_start

recs=$TRIB_TMP/records
trib_gen_records 100 100 >"$recs"
trib_cli topics create --topic term-cli --partitions 6 >/dev/null || trib_fail "create"
trib_cli topics create --topic term-kcat --partitions 6 >/dev/null || trib_fail "create"
trib_cli produce --topic term-cli --key-separator ' ' --acks -1 --compression lz4 <"$recs" ||
    trib_fail "produce (cli)"
kcat -b "$TRIB_BOOTSTRAP" -P -t term-kcat -K ' ' -X acks=all -z gzip <"$recs" 2>"$TRIB_TMP/kcat.err" ||
    trib_fail "kcat -P: $(cat "$TRIB_TMP/kcat.err")"
grep -Eiq 'fail|error' "$TRIB_TMP/kcat.err" && trib_fail "kcat -P: $(cat "$TRIB_TMP/kcat.err")"

trib_collector_restart TERM

for t in term-cli term-kcat; do
    trib_cli consume --topic "$t" --from-beginning --max 10000 --timeout-ms 30000 --print-key \
        --separator ' ' >"$TRIB_TMP/$t.out" 2>"$TRIB_TMP/$t.err" || trib_fail "consume $t: $(cat "$TRIB_TMP/$t.err")"
    trib_verify_records "$TRIB_TMP/$t.out" 100 100
    trib_cli topics describe --topic "$t" >"$TRIB_TMP/d" 2>&1 || trib_fail "describe $t"
    trib_expect_grep "$t after restart" 'PartitionCount: 6' "$TRIB_TMP/d"
done

# Appends continue after the recovered end: 10 more on one partition.
trib_gen_records 1 10 | sed 's/^key-0 key-0-/after after-/' |
    trib_cli produce --topic term-cli --partition 0 --key-separator ' ' || trib_fail "produce after restart"
trib_cli consume --topic term-cli --partition 0 --from-beginning --exit-at-end --print-key \
    --separator ' ' >"$TRIB_TMP/p0" 2>/dev/null || trib_fail "consume partition 0"
trib_expect_eq "appended after the old records" \
    "$(printf 'after after-%d\n' 0 1 2 3 4 5 6 7 8 9)" "$(tail -n 10 "$TRIB_TMP/p0")"
trib_pass
