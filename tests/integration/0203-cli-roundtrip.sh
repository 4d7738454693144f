#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tributary produce/consume round trips: 10,000 keyed records into a
# 6-partition topic with every codec (none, gzip, snappy, lz4, zstd); the
# CLI and kcat (manual assignment) each read every record exactly once with
# per-key order preserved; the key's partition is murmur2's, like Java's.
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_harness_init
trib_collector_start

recs=$TRIB_TMP/records
trib_gen_records 100 100 >"$recs"
for codec in none gzip snappy lz4 zstd; do
    t=cli-$codec
    trib_cli topics create --topic "$t" --partitions 6 >/dev/null || trib_fail "create $t"
    trib_cli produce --topic "$t" --key-separator ' ' --compression "$codec" --acks -1 <"$recs" ||
        trib_fail "produce $t"
    trib_cli consume --topic "$t" --from-beginning --max 10000 --timeout-ms 30000 --print-key \
        --separator ' ' >"$TRIB_TMP/$t.out" 2>"$TRIB_TMP/$t.err" || trib_fail "consume $t: $(cat "$TRIB_TMP/$t.err")"
    trib_verify_records "$TRIB_TMP/$t.out" 100 100
    trib_expect_codec "$t" "$codec"
    if command -v kcat >/dev/null 2>&1; then
        kcat -b "$TRIB_BOOTSTRAP" -C -t "$t" -o beginning -e -q -f '%k %s\n' >"$TRIB_TMP/$t.kcat" ||
            trib_fail "kcat -C $t"
        trib_verify_records "$TRIB_TMP/$t.kcat" 100 100
    fi
done

# murmur2 partitioning: key-0 lands where Java's partitioner puts it.
p=$("$TRIB_PY" -c 'from kafka.partitioner.default import murmur2; print((murmur2(b"key-0") & 0x7fffffff) % 6)')
trib_cli consume --topic cli-none --partition "$p" --from-beginning --exit-at-end --print-key \
    --separator ' ' >"$TRIB_TMP/p.out" 2>/dev/null || trib_fail "consume partition $p"
trib_expect_grep "key-0 in partition $p" '^key-0 key-0-0$' "$TRIB_TMP/p.out"

# --offset and --partition: the 3 records from offset 5 of that partition.
trib_cli consume --topic cli-none --partition "$p" --offset 5 --max 3 --timeout-ms 10000 \
    --print-offset >"$TRIB_TMP/o.out" 2>/dev/null || trib_fail "consume --offset"
trib_expect_eq "offsets" $'5\n6\n7' "$(cut -f1 "$TRIB_TMP/o.out" | sed 's/^Offset://')"

# acks=0 and acks=1 also land (acks=0 has no response: wait for the records).
for acks in 0 1; do
    trib_cli produce --topic "acks$acks" --key-separator ' ' --acks "$acks" <"$recs" ||
        trib_fail "produce acks=$acks"
    trib_cli consume --topic "acks$acks" --from-beginning --max 10000 --timeout-ms 30000 \
        --print-key --separator ' ' >"$TRIB_TMP/a$acks.out" 2>/dev/null || trib_fail "consume acks=$acks"
    trib_verify_records "$TRIB_TMP/a$acks.out" 100 100
done
trib_pass
