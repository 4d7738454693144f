# SPDX-License-Identifier: Apache-2.0
# Shared by scripts/test and scripts/quickstart: package lists and an
# installer that runs `apt-get update` once and installs only what is
# missing, so a second run on a ready machine installs nothing.

# Needed to build Tributary.
TRIB_BUILD_PACKAGES=(
    gcc make cmake pkg-config
    libuv1-dev libssl-dev libyaml-dev libpcre2-dev zlib1g-dev
    liblz4-dev libzstd-dev libsnappy-dev librdkafka-dev libjemalloc-dev
    libpq-dev libcurl4-openssl-dev libzookeeper-st-dev
)

# Needed by the tests: cmocka for unit tests; Debian's python3 with
# kafka-python (and its snappy, lz4 and zstd modules) as the codec oracle;
# clang-format for the format check. The integration tests drive the
# collector with real clients: kcat and python3-confluent-kafka (both on
# librdkafka 2.0.2), kafka-python, and kafkajs (npm, see trib_install_node).
# The sink tests start a throwaway PostgreSQL 15 (initdb + pg_ctl) and
# Debian's clickhouse-server (18.16) in temp dirs (tributary-bench-sinks
# also times clickhouse-client, under GNU time). The agent's syslog tests
# send with logger (bsdutils) and make TLS certificates with openssl.
# The cluster tests run Debian's ZooKeeper 3.8 from its jars (the zookeeper
# package, with a JRE; never its system service) in temp dirs; the network
# fault tests (run as root) put each node in a network namespace (iproute2)
# and cut links with nftables. The web console's browser tests drive
# Debian's headless chromium through chromium-driver with python3-selenium.
TRIB_TEST_PACKAGES=(
    libcmocka-dev clang-format python3 python3-kafka python3-snappy python3-lz4 python3-zstandard
    kcat python3-confluent-kafka
    postgresql clickhouse-server clickhouse-client
    bsdutils openssl time zookeeper iproute2 nftables
    chromium chromium-driver python3-selenium
)

# Needed by scripts/package and the packaging tests (tests/packaging):
# dpkg-shlibdeps (dpkg-dev), rpmbuild (rpm), lintian, debootstrap for the
# install test's Debian 12 root (cached with zstd; ip brings up the loopback
# of the daemons' private network namespace; systemd-nspawn boots the root
# to run the units under systemd). tests/e2e's quickstart test runs
# scripts/quickstart in such a root, from a git clone of the checkout.
TRIB_PACKAGING_PACKAGES=(dpkg-dev rpm lintian debootstrap zstd iproute2 systemd-container git)

# Needed by tools/bench/produce's loopback baseline.
TRIB_BENCH_PACKAGES=(iperf3)

# Run by scripts/quickstart: the daemons and the CLI need only the shared
# libraries the build pulls in; kcat shows the same quickstart with a
# standard Kafka tool (and reads as a consumer group), logger (bsdutils)
# sends syslog, curl reads the daemons' /metrics.
TRIB_QUICKSTART_PACKAGES=(kcat bsdutils curl)

trib_missing_packages() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    echo "${missing[@]:-}"
}

trib_install_packages() {
    local missing
    missing=$(trib_missing_packages "$@")
    if [ -z "$missing" ]; then
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: need root to install: $missing" >&2
            return 1
        fi
    fi
    echo "==> installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt-get (a second script, unattended-upgrades) may hold the
    # dpkg lock: wait for it rather than fail.
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
    # shellcheck disable=SC2086
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
}

# node and npm for the kafkajs tests. A machine that already has node (say
# from NodeSource, whose nodejs package bundles npm) keeps it: Debian's npm
# package would conflict with it. Otherwise Debian 12's nodejs and npm.
trib_install_node() {
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        return 0
    fi
    trib_install_packages nodejs npm
}

# The kafkajs tests' node_modules, from the committed package-lock.json.
trib_npm_ci() {
    local dir=$1
    [ -d "$dir/node_modules/kafkajs" ] && return 0
    echo "==> npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund)
}

trib_jobs() {
    nproc 2>/dev/null || echo 2
}
