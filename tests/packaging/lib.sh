# SPDX-License-Identifier: Apache-2.0
# Sourced by the tests that run in a fresh Debian 12 root
# (tests/packaging/install-test.sh, tests/e2e/quickstart-debian.sh) and by
# the packaging checks.
#
#   skip_or_fail REASON        a prerequisite is missing: exit 77 (skipped)
#                              with the reason printed; in CI (CI=true) that
#                              is a failure instead (exit 1), as CI installs
#                              everything the tests need
#   debian_root_tarball CACHEDIR NAME [INCLUDE]
#                              CACHEDIR/NAME.tar.zst, a bookworm root made by
#                              `debootstrap --variant=minbase` (plus the
#                              comma-separated INCLUDE packages) from
#                              $TRIB_DEBIAN_MIRROR (default deb.debian.org),
#                              once: later calls reuse it (flock makes
#                              concurrent callers wait). Sets DEBIAN_ROOT_TARBALL.
#   debian_root_unpack TARBALL DIR
#                              a fresh copy of that root in DIR (seconds)
#
# CACHEDIR/apt-archives is there for the roots' apt caches (bind-mounted on
# their /var/cache/apt/archives), so a rerun downloads nothing again.

in_ci() {
    [ "${CI:-}" = true ]
}

skip_or_fail() {
    if in_ci; then
        echo "FAIL: $* (CI=true: a missing prerequisite fails the test)"
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

debian_root_tarball() {
    local cachedir=$1 name=$2 include=${3:-}
    local mirror=${TRIB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    local tarball=$cachedir/$name.tar.zst
    mkdir -p "$cachedir/apt-archives/partial"
    (
        flock 9
        if [ ! -s "$tarball" ]; then
            local boot
            boot=$(mktemp -d "$cachedir/debootstrap.XXXXXX")
            echo "==> debootstrap bookworm (minbase${include:+ + $include}) from $mirror"
            if ! debootstrap --variant=minbase ${include:+--include="$include"} bookworm \
                "$boot/root" "$mirror" >"$cachedir/debootstrap-$name.log" 2>&1; then
                tail -20 "$cachedir/debootstrap-$name.log"
                rm -rf "$boot"
                exit 1
            fi
            tar -C "$boot/root" --numeric-owner -cf - . | zstd -q -T0 -3 -o "$tarball.tmp" &&
                mv "$tarball.tmp" "$tarball"
            rm -rf "$boot"
        fi
    ) 9>"$cachedir/lock" || return 1
    [ -s "$tarball" ] || return 1
    DEBIAN_ROOT_TARBALL=$tarball
}

debian_root_unpack() {
    local tarball=$1 dir=$2
    echo "==> unpacking a fresh root from $(basename "$tarball")"
    mkdir -p "$dir" && zstd -q -dc "$tarball" | tar -C "$dir" --numeric-owner -xf -
}
