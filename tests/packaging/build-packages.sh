#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/packaging/build-packages.sh BUILD_DIR OUT_DIR: the packaging.build
# test. CPack makes the .deb and .rpm files from BUILD_DIR (already built)
# into OUT_DIR, for packaging.check and packaging.install. scripts/package
# builds release packages the same way, with Debian's hardening flags.
# Exit 77 (skipped) when dpkg-shlibdeps or rpmbuild is missing.
set -uo pipefail
build=${1:?usage: build-packages.sh BUILD_DIR OUT_DIR}
out=${2:?usage: build-packages.sh BUILD_DIR OUT_DIR}
for tool in cpack dpkg-shlibdeps rpmbuild; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (scripts/test installs dpkg-dev and rpm)"
        exit 77
    fi
done
mkdir -p "$out"
rm -rf "${out:?}"/*.deb "${out:?}"/*.rpm "${out:?}"/_CPack_Packages
cd "$build" || exit 1
if ! cpack -G "DEB;RPM" --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1; then
    cat "$out/cpack.log"
    exit 1
fi
grep 'generated' "$out/cpack.log"
ls -l "$out"/*.deb "$out"/*.rpm
