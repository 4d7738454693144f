#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/e2e/quickstart-debian.sh SOURCE_DIR CACHEDIR: scripts/quickstart as
# a new user meets it, on a fresh Debian 12 machine, as root.
#
#   1. A bookworm root made by `debootstrap --variant=minbase` (what a
#      container image holds: no compiler, no python3), cached as
#      CACHEDIR/bookworm-minbase.tar.zst and unpacked fresh
#      (tests/packaging/lib.sh, shared with the packaging install test).
#   2. A clean clone of SOURCE_DIR's HEAD (git clone; uncommitted changes
#      are not in it) in /root/tributary of the root.
#   3. In the root (chroot, a private mount and PID namespace: nothing
#      outlives the test), with an empty environment:
#        scripts/quickstart                  apt-get installs what it needs
#                                            from Debian's mirror, builds,
#                                            runs the walk-through
#        scripts/quickstart --keep-running   again (no install, the build is
#                                            there); the daemons stay up
#        scripts/quickstart                  a third time while they run: it
#                                            must refuse, naming the port
#      then the daemons are stopped with the command the second run printed.
#   4. Checks of the first run's output: the events from the tailed access
#      log and from syslog (logger over TCP) in the file sink's files (and
#      the files themselves: 8 + 3 lines), read by the consumer group
#      quickstart-readers, the groups' lag, both daemons' metrics, both
#      exiting 0; and that python3 and cmocka were never installed (the
#      configure step needs neither).
#
# Ports: the test passes four ports below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range), where the other tests' ports (all bound
# to port 0, so ephemeral) never are, and checks that nothing listens on
# them; the test also runs alone (RUN_SERIAL: it compiles on every core).
# The default 9092 of a developer's own collector is left alone.
#
# Needs root, debootstrap, unshare, chroot, zstd, flock, git and the
# network (a Debian mirror; TRIB_DEBIAN_MIRROR for another). Exit 0 pass,
# 1 fail, 77 skipped with the reason printed (in CI, CI=true: 1).
set -uo pipefail
src=${1:?usage: quickstart-debian.sh SOURCE_DIR CACHEDIR}
cachedir=${2:?usage: quickstart-debian.sh SOURCE_DIR CACHEDIR}
. "$(dirname "$0")/../packaging/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    skip_or_fail "the quickstart test needs root (debootstrap, chroot, namespaces)"
fi
for tool in debootstrap unshare chroot zstd flock git; do
    command -v "$tool" >/dev/null 2>&1 || skip_or_fail "$tool is not installed"
done
if ! unshare --mount --pid --fork true 2>/dev/null; then
    skip_or_fail "cannot create mount and PID namespaces here"
fi
mkdir -p "$cachedir"
cachedir=$(cd "$cachedir" && pwd)
# The checkout may belong to another user than root (CI's runner user): git
# would refuse it as a "dubious ownership" repository (and so would the
# clone's upload-pack, which does not see -c options).
git() {
    command git -c safe.directory='*' "$@"
}
head=$(git -C "$src" rev-parse HEAD) || { echo "FAIL: $src is not a git checkout"; exit 1; }
if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
    echo "note: $src has uncommitted changes; the clone tests HEAD ($head) without them"
fi

failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}
t0=$(date +%s)

# ---- 1, 2. the root and the clone -------------------------------------------
debian_root_tarball "$cachedir" bookworm-minbase || { echo "FAIL: debootstrap"; exit 1; }
t_boot=$(date +%s)
work=$(mktemp -d "$cachedir/quickstart.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
debian_root_unpack "$DEBIAN_ROOT_TARBALL" "$root" || { echo "FAIL: unpack"; exit 1; }
if [ -e "$root/usr/bin/python3" ] || [ -e "$root/usr/bin/cc" ]; then
    echo "FAIL: the minbase root already has python3 or a compiler"
    exit 1
fi
echo "==> git clone $src (HEAD $head) into the root's /root/tributary"
git clone -q --no-checkout --upload-pack="git -c safe.directory=* upload-pack" \
    "$src" "$root/root/tributary" &&
    git -C "$root/root/tributary" checkout -q --detach "$head" ||
    { echo "FAIL: git clone"; exit 1; }

# Four free ports below the ephemeral range.
low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[[ "$low" =~ ^[0-9]+$ ]] && [ "$low" -gt 12000 ] || low=32768
ports=()
p=$((low - 10000 + RANDOM % 8000))
while [ "${#ports[@]}" -lt 4 ]; do
    p=$((p + 1))
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null || ports+=("$p")
done
echo "ports: kafka ${ports[0]}, metrics ${ports[1]}, agent metrics ${ports[2]}, syslog ${ports[3]}"

# ---- 3. the quickstart, three times ---------------------------------------------
cat >"$root/root/quickstart-test-inner.sh" <<'INNER'
#!/bin/bash
# Runs in the root as PID 1 of its namespace (tests/e2e/quickstart-debian.sh).
set -u
cd /root/tributary
ports=(--kafka-port "$1" --metrics-port "$2" --agent-metrics-port "$3" --syslog-port "$4")
mount -t proc proc /proc
s=$(date +%s)
scripts/quickstart "${ports[@]}" >/root/qs1.out 2>&1
echo $? >/root/qs1.rc
echo $(($(date +%s) - s)) >/root/qs1.secs
scripts/quickstart --keep-running "${ports[@]}" >/root/qs2.out 2>&1
echo $? >/root/qs2.rc
scripts/quickstart "${ports[@]}" >/root/qs3.out 2>&1
echo $? >/root/qs3.rc
# The command the second run printed to stop the daemons: "kill A; kill C".
stop=$(sed -n 's/^    \(kill [0-9]*; kill [0-9]*\)$/\1/p' /root/qs2.out)
pids=$(echo "$stop" | tr -dc '0-9 ')
echo "$stop" >/root/qs2.stop
if [ -n "$stop" ]; then
    eval "$stop"
    # They are this shell's (PID 1's) children now: gone or zombies.
    for _ in $(seq 1 600); do
        left=
        for p in $pids; do
            st=$(awk '{print $3}' /proc/$p/stat 2>/dev/null)
            [ -n "$st" ] && [ "$st" != Z ] && left="$left $p"
        done
        [ -z "$left" ] && break
        sleep 0.1
    done
    [ -z "$left" ] && echo stopped >/root/qs2.stopped || echo "still running:$left" >/root/qs2.stopped
fi
{ command -v python3 || echo "no python3"; } >/root/python3.path
dpkg-query -W -f='${Package} ${Status}\n' libcmocka-dev python3 2>/dev/null >/root/test-packages.txt
umount /proc
INNER
chmod 755 "$root/root/quickstart-test-inner.sh"
echo "==> scripts/quickstart in the root (apt-get install, build, walk-through), then --keep-running, then a refusal"
unshare --mount --pid --fork --kill-child -- sh -c '
    root=$1 cache=$2; shift 2
    mount --rbind /dev "$root/dev" &&
    mount -t sysfs sysfs "$root/sys" &&
    mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives" &&
    cp /etc/resolv.conf "$root/etc/resolv.conf" &&
    exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /root/quickstart-test-inner.sh "$@"' sh "$root" "$cachedir" "${ports[@]}"
t_run=$(date +%s)

# ---- 4. checks ----------------------------------------------------------------
r=$root/root
out=$r/qs1.out
echo "---------- scripts/quickstart (first run) ----------"
cat "$out"
echo "----------------------------------------------------"
rc=$(cat "$r/qs1.rc" 2>/dev/null)
[ "$rc" = 0 ] || fail "scripts/quickstart exited '$rc'"
# section HEADING: the lines from the "==> HEADING" line to the next "==> ".
section() {
    awk -v h="==> $1" 'index($0, h) == 1 { on = 1; next } /^==> / { on = 0 } on' "$out"
}
# expect WHAT TEXT ERE: TEXT has a line matching ERE.
expect() {
    grep -Eq -- "$3" <<<"$2" || fail "$1: no line matches $3"
}
log=/root/tributary/build/quickstart/logs/access.log
expect "the Kafka quickstart (kcat)" "$(section 'the same with kcat')" '^This is my fourth event$'
topics=$(section 'the events in their topics')
expect "web.access" "$topics" "^Partition:[0-2]	192\\.0\\.2\\.44	\\{.*\"source\":\"$log\".*\"method\":\"POST\",\"path\":\"/login\",\"status\":\"401\""
expect "system.syslog" "$topics" '"facility":"auth","severity":"warning".*"app":"sshd"'
sink=$(section 'the file sink')
expect "the sink's files, tailed file" "$sink" "^\\{\"topic\":\"web\\.access\",.*\"value\":\\{.*\"source\":\"$log\".*\"client\":\"203\\.0\\.113\\.7\""
expect "the sink's files, syslog" "$sink" '^\{"topic":"system\.syslog",.*"message":"Failed password for invalid user admin from 192\.0\.2\.44 port 52113 ssh2"'
group=$(section 'a consumer group')
[ "$(grep -c '^web\.access \[[0-2]\] key ' <<<"$group")" -eq 6 ] ||
    fail "the consumer group did not read the 6 web.access events"
[ "$(grep -c '^system\.syslog \[0\] key ' <<<"$group")" -eq 3 ] ||
    fail "the consumer group did not read the 3 system.syslog events"
expect "consumer group, tailed file" "$group" "^web\\.access \\[[0-2]\\] key 198\\.51\\.100\\.42: \\{.*\"source\":\"$log\".*\"path\":\"/missing\\.png\""
expect "consumer group, syslog" "$group" '^system\.syslog \[0\] key .*"message":"nightly backup finished: 3\.2 GiB in 41 s"'
lag=$(section 'two more lines')
# tributary groups describe: TOPIC PARTITION CURRENT LOG-END LAG; the
# readers lag by the 2 new lines, the sink by none.
lag_of() {
    awk -v g="$1" '/^\$ tributary groups describe --group / { on = ($NF == g); next }
        on && ($1 == "web.access" || $1 == "system.syslog") { n++; lag += $5 }
        END { print (n > 0 ? lag : "none") }' <<<"$lag"
}
[ "$(lag_of quickstart-readers)" = 2 ] || fail "quickstart-readers' lag is '$(lag_of quickstart-readers)', not 2"
[ "$(lag_of sink.files)" = 0 ] || fail "sink.files' lag is '$(lag_of sink.files)', not 0"
metrics=$(section "the daemons' metrics")
expect "collector metrics" "$metrics" '^tributary_sink_records_delivered_total\{sink="files"\} 11$'
expect "agent metrics" "$metrics" '^tributary_agent_lines_read_total 8$'
expect "agent metrics" "$metrics" '^tributary_agent_syslog_received_total 3$'
grep -q '^both exited 0' "$out" || fail "the daemons did not both exit 0"
# The sink's files themselves.
sinkdir=$r/tributary/build/quickstart/sink
nweb=$(cat "$sinkdir"/web.access-*.jsonl 2>/dev/null | grep -c '^{"topic":"web.access",')
nsys=$(cat "$sinkdir"/system.syslog-*.jsonl 2>/dev/null | grep -c '^{"topic":"system.syslog",')
echo "sink files: $nweb web.access lines, $nsys system.syslog lines"
[ "$nweb" = 8 ] && [ "$nsys" = 3 ] || fail "the sink's files hold $nweb + $nsys lines, not 8 + 3"
# Neither python3 nor cmocka was installed to configure and build.
grep -q '^no python3$' "$r/python3.path" || fail "python3 is in the root: $(cat "$r/python3.path")"
if grep -q 'install ok installed' "$r/test-packages.txt"; then
    fail "installed in the root: $(grep 'install ok installed' "$r/test-packages.txt")"
fi

# --keep-running, and the refusal while its daemons hold the ports.
echo "---------- scripts/quickstart --keep-running (tail) ----------"
tail -n 22 "$r/qs2.out"
echo "---------- scripts/quickstart while they run ----------"
cat "$r/qs3.out"
echo "-------------------------------------------------------"
[ "$(cat "$r/qs2.rc")" = 0 ] || fail "scripts/quickstart --keep-running exited $(cat "$r/qs2.rc")"
grep -q '^==> both daemons keep running' "$r/qs2.out" || fail "--keep-running did not say what runs"
[ "$(cat "$r/qs3.rc")" = 1 ] || fail "the run on taken ports exited $(cat "$r/qs3.rc"), not 1"
grep -q "127.0.0.1:${ports[0]} (the collector's Kafka listener) is already in use" "$r/qs3.out" ||
    fail "the run on taken ports did not name the taken port"
[ "$(cat "$r/qs2.stopped" 2>/dev/null)" = stopped ] ||
    fail "the printed stop command ($(cat "$r/qs2.stop" 2>/dev/null)) did not stop both daemons: $(cat "$r/qs2.stopped" 2>/dev/null)"

echo "durations: debootstrap root $((t_boot - t0)) s (cached after the first run)," \
    "first quickstart $(cat "$r/qs1.secs" 2>/dev/null) s (apt-get install + build + walk-through)," \
    "all three runs $((t_run - t_boot)) s;" \
    "$(grep -o 'the walk-through took [0-9]* s after the build' "$out")"
if [ "$failed" -ne 0 ]; then
    echo "quickstart test FAILED"
    exit 1
fi
echo "quickstart test passed"
