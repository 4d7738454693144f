#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# cmocka-run.sh PROGRAM [ARGS…]: runs a cmocka test program for ctest.
# cmocka reports a test that called skip() as "[  SKIPPED ] name" and still
# exits 0, which ctest would count as a pass. When the program passed but
# skipped a test, this prints one "SKIP: …" line with the reasons the
# program printed (its own "SKIP: reason" lines) and the skipped tests, and
# exits 77, the unit tests' SKIP_RETURN_CODE. A program that skipped without
# printing a reason gets no "SKIP:" line, so the summary reports that.
# A failing program keeps its exit status (77 failures become 1).
set -uo pipefail
out=$(mktemp "${TMPDIR:-/tmp}/cmocka-run.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
"$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    [ "$rc" -ne 77 ] || rc=1
    exit "$rc"
fi
skipped=$(sed -n 's/^\[  SKIPPED \] \([A-Za-z0-9_]*\)$/\1/p' "$out" | sort -u | paste -sd ' ' -)
[ -n "$skipped" ] || exit 0
reasons=$(sed -n 's/.*SKIP: *\(.*[^ ]\) *$/\1/p' "$out" | awk '!seen[$0]++' | paste -sd ';' - | sed 's/;/; /g')
if [ -n "$reasons" ]; then
    echo "cmocka-run: SKIP: $reasons (skipped: $skipped)"
else
    echo "cmocka-run: $skipped called skip() without printing a 'SKIP: reason' line"
fi
exit 77
