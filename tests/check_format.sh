#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks that the hand-written C follows .clang-format. The generated codec
# (common/kafka/gen) is laid out by its generator and is not checked.
#   tests/check_format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
    echo "clang-format is not installed" >&2
    exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' |
        grep -v '^common/kafka/gen/')
else
    mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \
        \( -name '*.c' -o -name '*.h' \) -print | grep -v '/common/kafka/gen/')
fi
if [ "${1:-}" = "--fix" ]; then
    clang-format -i "${files[@]}"
    exit 0
fi
bad=0
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run tests/check_format.sh --fix)"
        bad=1
    fi
done
echo "${#files[@]} files checked"
exit "$bad"
