#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kafkajs 2.2.4 round trips: an idempotent kafkajs producer writes 10,000
# keyed records into a 6-partition topic with each codec kafkajs has here
# (none, gzip built in; snappy through kafkajs-snappy; lz4 and zstd need
# native codec modules, not installed). kafkajs has no manual assignment —
# every kafkajs consumer is a group consumer (0402 covers kafkajs groups) —
# so kcat and the tributary CLI read the records back, each exactly once
# with per-key order kept.
set -uo pipefail
. "$(dirname "$0")/lib/harness.sh"
trib_require node npm kcat
js=$TRIB_ROOT/tests/integration/js
if [ ! -d "$js/node_modules/kafkajs" ]; then
    (cd "$js" && npm ci --no-audit --no-fund >/dev/null) || trib_fail "npm ci in $js failed"
fi
trib_harness_init
trib_collector_start

for codec in none gzip snappy; do
    t=kjs-$codec
    trib_cli topics create --topic "$t" --partitions 6 >/dev/null || trib_fail "create $t"
    node "$js/produce.js" "$TRIB_BOOTSTRAP" "$t" "$codec" 100 100 || trib_fail "kafkajs produce $t"
    kcat -b "$TRIB_BOOTSTRAP" -C -t "$t" -o beginning -e -q -f '%k %s\n' >"$TRIB_TMP/$t.kcat" ||
        trib_fail "kcat -C $t"
    trib_verify_records "$TRIB_TMP/$t.kcat" 100 100
    trib_cli consume --topic "$t" --from-beginning --max 10000 --timeout-ms 30000 --print-key \
        --separator ' ' >"$TRIB_TMP/$t.cli" 2>/dev/null || trib_fail "tributary consume $t"
    trib_verify_records "$TRIB_TMP/$t.cli" 100 100
    trib_expect_codec "$t" "$codec"
done
trib_pass
