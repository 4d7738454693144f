#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Agent configuration errors: each tests/config/agent/<case>.yaml, checked
# with --check-config from that directory (so file names are stable), must
# exit with status 2 and print exactly <case>.expected (file:line:column
# errors: unknown keys, bad regexes at the offending column, wrong types,
# missing required values, producer options librdkafka refuses or that
# would weaken delivery). conf/agent.yaml, which documents every option,
# must pass, and so must the same file through --dry-run's loader.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TRIB_BIN_DIR:-$root/build/bin}
agent=$bin/tributary-agent
[ -x "$agent" ] || { echo "FAIL: $agent is not built" >&2; exit 1; }
fail=0
cd "$root/tests/config/agent" || exit 1
for y in *.yaml; do
    case=${y%.yaml}
    out=$(mktemp)
    "$agent" --check-config --config "$y" >/dev/null 2>"$out"
    st=$?
    if [ "$st" -ne 2 ]; then
        echo "FAIL: $y: exit status $st, not 2" >&2
        fail=1
    fi
    if ! /usr/bin/python3 "$root/tests/integration/lib/tributary_harness.py" \
        sanitizer-check "$out"; then
        echo "FAIL: $y: sanitizer report" >&2
        fail=1
    elif ! diff -u "$case.expected" "$out" >&2; then
        echo "FAIL: $y: errors differ from $case.expected" >&2
        fail=1
    fi
    rm -f "$out"
done
if ! "$agent" --check-config --config "$root/conf/agent.yaml" >/dev/null; then
    echo "FAIL: conf/agent.yaml does not pass --check-config" >&2
    fail=1
fi
if "$agent" --check-config --config /nonexistent/agent.yaml 2>/dev/null; then
    echo "FAIL: a missing file passed" >&2
    fail=1
fi
[ "$fail" -eq 0 ] && echo "[0305-agent-bad-configs.sh] PASS" >&2
exit "$fail"
