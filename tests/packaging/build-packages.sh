#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/packaging/build-packages.sh SOURCE_DIR: the packaging.build test.
# Runs scripts/package in SOURCE_DIR exactly as a user does (no options): a
# release build with Debian's build flags (dpkg-buildflags: -O2,
# -D_FORTIFY_SOURCE=2, ...) and -Werror in SOURCE_DIR/build-package, then
# CPack. packaging.check and packaging.install use the packages it wrote to
# SOURCE_DIR/build-package/packages.
set -uo pipefail
src=${1:?usage: build-packages.sh SOURCE_DIR}
. "$(dirname "$0")/lib.sh"
cd "$src" || exit 1
# scripts/package installs what it lacks with apt-get, which needs root.
if [ "$(id -u)" -ne 0 ]; then
    for tool in cmake dpkg-buildflags dpkg-shlibdeps rpmbuild; do
        command -v "$tool" >/dev/null 2>&1 ||
            skip_or_fail "$tool is not installed and scripts/package cannot install it without root"
    done
fi
start=$(date +%s)
echo "\$ scripts/package"
scripts/package || { echo "FAIL: scripts/package exited $?"; exit 1; }
echo "scripts/package took $(($(date +%s) - start)) s"
