#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/packaging/check-packages.sh PKGDIR: static checks of the packages
# scripts/package (run by the packaging.build test) wrote to PKGDIR.
#
#   - lintian on the .deb files: no error (E:) tags; every tag is printed.
#   - tributary-agent and tributary-collector exist, and a
#     tributary-sink-<name> package per plugin with libraries of its own.
#   - each .deb's Depends names the Debian package of every shared library
#     its ELF files need (dpkg-shlibdeps worked), plus adduser (agent,
#     collector) or tributary-collector (= version) (a sink plugin).
#   - the conffiles are /etc/tributary/{agent,collector}.yaml (sinks: none).
#   - rpm -qpl lists the same files as the .deb of the same package;
#     rpm -qpc the configuration; rpm -qpR every needed soname, and
#     shadow-utils and systemd for the scriptlets.
#
# Exit 0 when everything holds, 1 otherwise, 77 (skipped) when a tool is
# missing (scripts/test installs them; in CI, CI=true, that fails instead).
set -uo pipefail
pkgdir=${1:?usage: check-packages.sh PKGDIR}

. "$(dirname "$0")/lib.sh"
for tool in lintian rpm dpkg-deb readelf; do
    command -v "$tool" >/dev/null 2>&1 || skip_or_fail "$tool is not installed"
done

failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pkgs=$(ls "$pkgdir"/tributary-*.deb 2>/dev/null | sed 's|.*/||; s|_.*||' | sort -u)
for p in tributary-agent tributary-collector; do
    grep -qx "$p" <<<"$pkgs" || fail "no $p .deb in $pkgdir"
done
for pkg in $pkgs; do
    deb=$(ls "$pkgdir/${pkg}"_*.deb 2>/dev/null | head -1)
    rpmf=$(ls "$pkgdir/${pkg}"-[0-9]*.rpm 2>/dev/null | head -1)
    [ -n "$deb" ] || { fail "no $pkg .deb in $pkgdir"; continue; }
    [ -n "$rpmf" ] || { fail "no $pkg .rpm in $pkgdir"; continue; }
    echo "== $pkg: $(basename "$deb") $(basename "$rpmf")"

    # Shared-library dependencies: the NEEDED sonames of every ELF file,
    # each resolved to its Debian package on this machine.
    root="$tmp/$pkg"
    mkdir -p "$root"
    dpkg-deb -x "$deb" "$root"
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "Depends: $depends"
    sonames=$(find "$root" -type f \( -perm -u+x -o -name '*.so' \) -exec sh -c \
        'readelf -d "$1" 2>/dev/null' _ {} \; |
        sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
    [ -n "$sonames" ] || fail "$pkg: no ELF file with NEEDED entries"
    for so in $sonames; do
        path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64|64bit|AArch64|aarch64/ {print $NF; exit}')
        [ -n "$path" ] || path=$(ldconfig -p | awk -v so="$so" '$1 == so {print $NF; exit}')
        owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
        [ -n "$owner" ] || owner=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
        if [ -z "$owner" ]; then
            fail "$pkg: cannot find the Debian package of $so"
        elif ! grep -Eq "(^|, )$owner( |,|$)" <<<"$depends"; then
            fail "$pkg: needs $so from $owner, which Depends does not name"
        fi
        # rpm: AutoReq turns each NEEDED entry into a soname requirement.
        if ! rpm -qpR "$rpmf" 2>/dev/null | grep -q "^${so}("; then
            fail "$pkg: rpm -qpR does not list $so"
        fi
    done
    comp=${pkg#tributary-}
    conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles 2>/dev/null)
    case "$pkg" in
    tributary-sink-*)
        version=$(dpkg-deb -f "$deb" Version)
        grep -Fq "tributary-collector (= $version)" <<<"$depends" ||
            fail "$pkg: Depends lacks tributary-collector (= $version)"
        rpm -qpR "$rpmf" 2>/dev/null | grep -q "^tributary-collector = " ||
            fail "$pkg: rpm -qpR lacks tributary-collector"
        [ -z "$conffiles" ] || fail "$pkg: has conffiles: $conffiles"
        ;;
    *)
        grep -Eq "(^|, )adduser( |,|$)" <<<"$depends" || fail "$pkg: Depends lacks adduser"
        [ "$conffiles" = "/etc/tributary/$comp.yaml" ] ||
            fail "$pkg: conffiles is '$conffiles', not /etc/tributary/$comp.yaml"
        [ "$(rpm -qpc "$rpmf" 2>/dev/null)" = "/etc/tributary/$comp.yaml" ] ||
            fail "$pkg: rpm -qpc is '$(rpm -qpc "$rpmf" 2>/dev/null)'"
        for req in shadow-utils systemd /bin/sh; do
            rpm -qpR "$rpmf" 2>/dev/null | grep -q "^$req\b" || fail "$pkg: rpm -qpR lacks $req"
        done
        ;;
    esac

    # The same files in both formats (directories aside: the .deb lists
    # every parent, the .rpm only those it owns).
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort >"$tmp/$pkg.deb.files"
    rpm -qpl --dump "$rpmf" 2>/dev/null | awk '$5 !~ /^040/ {print $1}' |
        sort >"$tmp/$pkg.rpm.files"
    if ! diff -u "$tmp/$pkg.deb.files" "$tmp/$pkg.rpm.files"; then
        fail "$pkg: the .deb and the .rpm hold different files"
    else
        echo "same $(wc -l <"$tmp/$pkg.deb.files") files in the .deb and the .rpm"
    fi
    echo "rpm -qpR:"
    rpm -qpR "$rpmf" 2>/dev/null | sed 's/^/  /'
done

echo "== lintian"
# Lintian warns about running as root; that line is not a package's tag.
lintian --pedantic --display-info "$pkgdir"/*.deb 2>&1 | grep -v '^running with root' |
    tee "$tmp/lintian.log"
if grep -q '^E: ' "$tmp/lintian.log"; then
    fail "lintian reports errors"
fi
if grep -q '^W: ' "$tmp/lintian.log"; then
    echo "note: lintian warnings above (see packaging/README.md for the accepted ones)"
fi

exit "$failed"
