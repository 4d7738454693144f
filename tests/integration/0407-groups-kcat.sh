#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kcat -G (librdkafka's high-level consumer) now that the group APIs are
# advertised: two kcat group members read a 4-partition topic to its end
# (every record once between them, offsets committed), `tributary groups
# describe` shows lag 0, and a second run of the group reads nothing new.
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_require kcat
trib_harness_init
trib_collector_start

trib_cli topics create --topic kg --partitions 4 >/dev/null || trib_fail "create kg"
seq 1 400 | kcat -b "$TRIB_BOOTSTRAP" -P -t kg -z lz4 -p -1 2>/dev/null ||
    trib_fail "kcat -P"
for i in 1 2; do
    timeout 60 kcat -b "$TRIB_BOOTSTRAP" -G kgroup -o beginning -e -q -f '%s\n' \
        -X session.timeout.ms=6000 -X enable.auto.commit=true -X auto.commit.interval.ms=100 \
        kg >"$TRIB_TMP/kcat-$i.out" 2>"$TRIB_TMP/kcat-$i.err" &
    pids[$i]=$!
done
for i in 1 2; do
    wait "${pids[$i]}" || trib_fail "kcat -G member $i failed: $(tail -3 "$TRIB_TMP/kcat-$i.err")"
done
sort -n "$TRIB_TMP"/kcat-1.out "$TRIB_TMP"/kcat-2.out | uniq >"$TRIB_TMP/all.out"
[ "$(wc -l <"$TRIB_TMP/all.out")" -eq 400 ] ||
    trib_fail "the two kcat members read $(wc -l <"$TRIB_TMP/all.out") distinct records of 400"
desc=$(trib_cli groups describe --group kgroup) || trib_fail "groups describe"
echo "$desc" >&2
echo "$desc" | awk '$1 == "kg" && ($3 == "-" || $5 != "0") { bad = 1 } END { exit bad }' ||
    trib_fail "kgroup is not committed at the log end"
again=$(timeout 60 kcat -b "$TRIB_BOOTSTRAP" -G kgroup -e -q -f '%s\n' kg 2>/dev/null | wc -l)
[ "$again" -eq 0 ] || trib_fail "a new run of the group read $again records again"
trib_pass
