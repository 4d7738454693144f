# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Integration test harness (bash). Source it from a numbered test script:
#
#   . "$(dirname "$0")/lib/harness.sh"
#   trib_harness_init             # temp dir, EXIT trap, skips (77) if no broker
#   trib_collector_start          # exports TRIB_BOOTSTRAP, TRIB_METRICS, TRIB_COLLECTOR_PID
#   ... drive clients against "$TRIB_BOOTSTRAP" ...
#   trib_collector_restart KILL   # same data dir; TERM (clean, exit 0) or KILL
#   trib_pass
#
# The collector runs as
#   tributary-collector --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
#       --data-dir $TRIB_DATA --ready-file $TRIB_TMP/ready [extra args]
# and is ready when the ready file holds two lines, `kafka HOST:PORT` and
# `metrics HOST:PORT` (waited for at most TRIB_READY_TIMEOUT seconds).
# Whatever way the test ends, the EXIT trap stops the collector and fails
# the test if the collector died without being asked to, if a SIGTERM did
# not end it with status 0, or if any of its logs holds a sanitizer report
# (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer's "runtime
# error:"). Logs are printed on failure and the temp dir is kept
# (TRIB_KEEP_TMP=1 keeps it always).
#
# Environment: TRIB_BIN_DIR (default <repo>/build/bin, set by ctest),
# TRIB_READY_TIMEOUT (30 s), TRIB_STOP_TIMEOUT (30 s).

TRIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TRIB_BIN_DIR=${TRIB_BIN_DIR:-$TRIB_ROOT/build/bin}
TRIB_CLI=$TRIB_BIN_DIR/tributary
TRIB_COLLECTOR=$TRIB_BIN_DIR/tributary-collector
TRIB_READY_TIMEOUT=${TRIB_READY_TIMEOUT:-30}
TRIB_STOP_TIMEOUT=${TRIB_STOP_TIMEOUT:-30}
# Debian's python3 has the packaged clients (python3-kafka, confluent-kafka).
TRIB_PY=/usr/bin/python3
TRIB_SKIP=77

TRIB_TMP=
TRIB_DATA=
TRIB_COLLECTOR_PID=
TRIB_BOOTSTRAP=
TRIB_METRICS=
_trib_runs=0
_trib_failed=0
_trib_test=$(basename "$0")

trib_log() {
    echo "[$_trib_test] $*" >&2
}

# trib_fail MESSAGE: fails the test (the EXIT trap cleans up).
trib_fail() {
    echo "[$_trib_test] FAIL: $*" >&2
    _trib_failed=1
    exit 1
}

trib_skip() {
    echo "[$_trib_test] SKIP: $*" >&2
    _trib_failed=0
    exit "$TRIB_SKIP"
}

# trib_pass: ends the test; the EXIT trap still checks the collector and its logs.
trib_pass() {
    exit 0
}

# trib_require CMD…: skips the test when a client tool is missing (scripts/test installs them).
trib_require() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || trib_fail "'$c' is not installed (scripts/test installs it)"
    done
}

# Sanitizer reports in the collector's logs (tributary_harness.py holds the
# pattern); prints the report and returns 1 if there is one.
trib_check_logs() {
    trib_sanitizer_check "$TRIB_TMP"/collector.*.log
}

# trib_sanitizer_check FILE…: 1 (and the report on stderr) if a file holds a
# sanitizer report.
trib_sanitizer_check() {
    "$TRIB_PY" "$TRIB_ROOT/tests/integration/lib/tributary_harness.py" sanitizer-check "$@" ||
        { echo "[$_trib_test] FAIL: sanitizer report (above)" >&2; return 1; }
}

_trib_dump_logs() {
    local f
    for f in "$TRIB_TMP"/collector.*.log; do
        [ -f "$f" ] || continue
        echo "----- $f (last 80 lines) -----" >&2
        tail -n 80 "$f" >&2
    done
}

_trib_on_exit() {
    local rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq "$TRIB_SKIP" ] || _trib_failed=1
    if [ -n "$TRIB_COLLECTOR_PID" ]; then
        if ! kill -0 "$TRIB_COLLECTOR_PID" 2>/dev/null; then
            local st=0
            wait "$TRIB_COLLECTOR_PID" 2>/dev/null || st=$?
            echo "[$_trib_test] FAIL: the collector (pid $TRIB_COLLECTOR_PID) died unexpectedly, status $st" >&2
            _trib_failed=1
            TRIB_COLLECTOR_PID=
        else
            _trib_stop TERM || _trib_failed=1
        fi
    fi
    if [ -n "$TRIB_TMP" ] && ! trib_check_logs; then
        _trib_failed=1
    fi
    if [ "$_trib_failed" -ne 0 ]; then
        [ -n "$TRIB_TMP" ] && _trib_dump_logs
        [ -n "$TRIB_TMP" ] && echo "[$_trib_test] kept $TRIB_TMP" >&2
        [ "$rc" -ne 0 ] && [ "$rc" -ne "$TRIB_SKIP" ] || rc=1
    else
        [ "$rc" -eq 0 ] && trib_log "PASS"
        [ -n "$TRIB_TMP" ] && [ -z "${TRIB_KEEP_TMP:-}" ] && rm -rf "$TRIB_TMP"
    fi
    exit "$rc"
}

# trib_harness_init: temp dir and trap; skips when the collector cannot run as a broker.
trib_harness_init() {
    [ -x "$TRIB_CLI" ] || trib_fail "$TRIB_CLI is not built"
    [ -x "$TRIB_COLLECTOR" ] || trib_fail "$TRIB_COLLECTOR is not built"
    if ! "$TRIB_COLLECTOR" --help 2>&1 | grep -q -- '--ready-file'; then
        trib_skip "tributary-collector has no --ready-file yet (the broker has not landed)"
    fi
    TRIB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/trib-it.XXXXXX")
    TRIB_DATA=$TRIB_TMP/data
    mkdir -p "$TRIB_DATA"
    trap _trib_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    export TRIB_TMP TRIB_DATA
}

# trib_collector_start [EXTRA ARGS…]: starts the collector and waits until it is ready.
trib_collector_start() {
    [ -z "$TRIB_COLLECTOR_PID" ] || trib_fail "collector already running"
    _trib_runs=$((_trib_runs + 1))
    local log=$TRIB_TMP/collector.$_trib_runs.log ready=$TRIB_TMP/ready
    rm -f "$ready"
    TRIB_COLLECTOR_ARGS=("$@")
    "$TRIB_COLLECTOR" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --data-dir "$TRIB_DATA" \
        --ready-file "$ready" "$@" >"$log" 2>&1 &
    TRIB_COLLECTOR_PID=$!
    local deadline=$((SECONDS + TRIB_READY_TIMEOUT))
    while :; do
        if [ -f "$ready" ] && [ "$(grep -c . "$ready")" -ge 2 ]; then
            break
        fi
        if ! kill -0 "$TRIB_COLLECTOR_PID" 2>/dev/null; then
            local st=0
            wait "$TRIB_COLLECTOR_PID" || st=$?
            TRIB_COLLECTOR_PID=
            trib_fail "the collector exited with status $st before it was ready (log: $log)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || trib_fail "the collector was not ready within ${TRIB_READY_TIMEOUT}s"
        sleep 0.05
    done
    TRIB_BOOTSTRAP=$(awk '$1 == "kafka" {print $2}' "$ready")
    TRIB_METRICS=$(awk '$1 == "metrics" {print $2}' "$ready")
    [ -n "$TRIB_BOOTSTRAP" ] || trib_fail "ready file has no 'kafka HOST:PORT' line: $(cat "$ready")"
    export TRIB_BOOTSTRAP TRIB_METRICS TRIB_COLLECTOR_PID
    trib_log "collector pid $TRIB_COLLECTOR_PID ready: kafka $TRIB_BOOTSTRAP, metrics $TRIB_METRICS"
}

# _trib_stop TERM|KILL: 0 if the collector ended as that signal should end it.
_trib_stop() {
    local sig=${1:-TERM} pid=$TRIB_COLLECTOR_PID st=0
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null
    local deadline=$((SECONDS + TRIB_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "[$_trib_test] FAIL: the collector did not exit within ${TRIB_STOP_TIMEOUT}s of SIG$sig" >&2
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            TRIB_COLLECTOR_PID=
            return 1
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || st=$?
    TRIB_COLLECTOR_PID=
    if [ "$sig" = TERM ] && [ "$st" -ne 0 ]; then
        echo "[$_trib_test] FAIL: SIGTERM ended the collector with status $st, not 0" >&2
        return 1
    fi
    if [ "$sig" = KILL ] && [ "$st" -ne 137 ]; then
        echo "[$_trib_test] FAIL: SIGKILL ended the collector with status $st, not 137" >&2
        return 1
    fi
    trib_log "collector stopped by SIG$sig (status $st)"
    return 0
}

# trib_collector_stop [TERM|KILL]
trib_collector_stop() {
    _trib_stop "${1:-TERM}" || trib_fail "collector stop failed"
    trib_check_logs || trib_fail "sanitizer report in the collector's log"
}

# trib_collector_restart [TERM|KILL]: stops and starts again on the same data dir.
trib_collector_restart() {
    trib_collector_stop "${1:-TERM}"
    trib_collector_start "${TRIB_COLLECTOR_ARGS[@]}"
}

# trib_cli ARGS…: the tributary CLI against the running collector.
trib_cli() {
    "$TRIB_CLI" "$@" --bootstrap "$TRIB_BOOTSTRAP"
}

# trib_expect_eq WHAT EXPECTED ACTUAL
trib_expect_eq() {
    [ "$2" = "$3" ] || trib_fail "$1: expected '$2', got '$3'"
}

# trib_expect_grep WHAT PATTERN FILE
trib_expect_grep() {
    grep -Eq -- "$2" "$3" || {
        echo "----- $3 -----" >&2
        head -50 "$3" >&2
        trib_fail "$1: /$2/ not found"
    }
}

TRIB_HARNESS_PY=$TRIB_ROOT/tests/integration/lib/tributary_harness.py

# trib_gen_records N_KEYS PER_KEY [PAD]: "key-K key-K-SEQ" lines, keys interleaved.
trib_gen_records() {
    "$TRIB_PY" "$TRIB_HARNESS_PY" gen "$@"
}

# trib_verify_records FILE N_KEYS PER_KEY: lines "KEY VALUE" as consumed; every
# (key, seq) exactly once and each key's sequence in order.
trib_verify_records() {
    "$TRIB_PY" "$TRIB_HARNESS_PY" verify "$@" || trib_fail "record check failed for $1"
}

# trib_expect_codec TOPIC CODEC: the topic's stored batches were compressed
# with CODEC (read from the Kafka-layout segment files; skipped with a note if
# there are none). Clients send a batch uncompressed when compression would
# not shrink it, so uncompressed batches may sit beside CODEC's.
trib_expect_codec() {
    local ids want id ok=0
    ids=$("$TRIB_PY" "$TRIB_HARNESS_PY" codecs "$TRIB_DATA" "$1")
    case $2 in none) want=0 ;; gzip) want=1 ;; snappy) want=2 ;; lz4) want=3 ;; zstd) want=4 ;; esac
    if [ "$ids" = none ]; then
        trib_log "note: no segment files for $1; codec not checked"
        return 0
    fi
    for id in $ids; do
        [ "$id" = "$want" ] && ok=1
        [ "$id" = 0 ] || [ "$id" = "$want" ] || ok=-100
    done
    [ "$ok" -eq 1 ] || trib_fail "topic $1: stored batches use codec ids '$ids', expected $want ($2)"
    trib_log "topic $1: stored batches are $2 (codec ids: $ids)"
}

# trib_broker_advertises API_KEY VERSION: true if the broker's advertised
# range for the API key contains VERSION.
trib_broker_advertises() {
    "$TRIB_CLI" cluster describe --api-versions --bootstrap "$TRIB_BOOTSTRAP" 2>/dev/null |
        awk -v k="$1" -v v="$2" '$1 == k && $3 ~ /^[0-9]+-[0-9]+$/ {
            split($3, r, "-"); if (r[1] + 0 <= v + 0 && v + 0 <= r[2] + 0) found = 1 }
            END { exit found ? 0 : 1 }'
}
