#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A throwaway PostgreSQL 15 for the sink tests: initdb + pg_ctl in a temp
# directory, as an unprivileged user (nobody when run as root), listening
# on 127.0.0.1 only, on an ephemeral port, socket in the directory.
#
#   pgtest.sh start DIR WATCH_PID [extra postgres -c settings...]
#       prints the port; a watcher stops the server (immediate) when
#       WATCH_PID exits, so a crashed test leaves no daemon behind
#   pgtest.sh stop DIR        fast shutdown (the data stays)
#   pgtest.sh kill DIR        immediate shutdown
#   pgtest.sh restart DIR     starts a stopped server again on its port
#   pgtest.sh psql DIR SQL    runs SQL, unaligned tuples-only output
set -eu
cmd=$1
dir=$2
bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && bindir=$d
    done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "pgtest.sh: no PostgreSQL server binaries (install postgresql)" >&2
    exit 77
fi

as_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    watch=$3
    shift 3
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown nobody "$dir"
        chmod o+x "$(dirname "$dir")" # a mkdtemp parent is 0700
    fi
    as_user "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        for kv in "$@"; do echo "$kv"; done
    } >>"$dir/data/postgresql.conf"
    echo "$port" >"$dir/port"
    as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 start >/dev/null ||
        { cat "$dir/pg.log" >&2; exit 1; }
    # The watcher: detached, holding no descriptor of the caller's.
    (
        while kill -0 "$watch" 2>/dev/null && [ -f "$dir/data/postmaster.pid" ]; do sleep 1; done
        as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    ) </dev/null >/dev/null 2>&1 &
    echo "$port"
    ;;
stop)
    as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
kill)
    as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
restart)
    # A start that fails shows why (the server's log); the port may be held
    # for a moment by a socket of a test's client that drew the same number
    # from the ephemeral range while the server was down, so it is tried
    # again a few times.
    for try in 1 2 3 4 5; do
        if as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 start >/dev/null; then
            exit 0
        fi
        echo "pgtest.sh: restart $try failed; the server's log ends:" >&2
        tail -n 5 "$dir/pg.log" >&2 || true
        sleep 1
    done
    exit 1
    ;;
psql)
    "$bindir/psql" -X -q -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -At -c "$3"
    ;;
*)
    echo "usage: pgtest.sh start|stop|kill|restart|psql DIR ..." >&2
    exit 2
    ;;
esac
