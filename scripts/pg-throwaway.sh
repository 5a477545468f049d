#!/usr/bin/env bash
# A throwaway PostgreSQL cluster of its own, for tests that stop and start the
# database under a running node (never the machine's shared server).
#
#   scripts/pg-throwaway.sh init DIR PORT   create a cluster in DIR listening on 127.0.0.1:PORT
#   scripts/pg-throwaway.sh start DIR       start it and wait until it accepts connections
#   scripts/pg-throwaway.sh stop DIR        fast shutdown (clients are disconnected), wait
#   scripts/pg-throwaway.sh destroy DIR     stop if running, remove DIR
#
# Uses Debian's server binaries (/usr/lib/postgresql/<version>/bin, package
# postgresql, see scripts/install-system.sh) or PG_BIN. PostgreSQL refuses to
# run as root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail
cmd="${1:?usage: pg-throwaway.sh init|start|stop|destroy DIR [PORT]}"
dir="${2:?missing DIR}"
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ]; then
    echo "pg-throwaway: PostgreSQL server binaries not found (install Debian's postgresql)" >&2
    exit 3
fi
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
running() { as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }
case "$cmd" in
    init)
        port="${3:?missing PORT}"
        mkdir -p "$dir"
        chmod 700 "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        as_owner "$BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log"
        cat >>"$dir/data/postgresql.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
max_connections = 50
EOF
        ;;
    start)
        as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
        ;;
    stop)
        as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
        ;;
    destroy)
        if [ -d "$dir/data" ] && running; then
            as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null || true
        fi
        rm -rf "$dir"
        ;;
    *)
        echo "pg-throwaway: unknown command $cmd" >&2
        exit 2
        ;;
esac
