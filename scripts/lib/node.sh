# Sourced by the scripts that run an external suite against a node of their own.
# Needs ROOT (the repository) and PY (its virtualenv's python).

# node_env: a temporary var dir (NODE), a free port (PORT), and the GENOMEPORT_*
# variables of a node there: SQLite unless GENOMEPORT_DATABASE_URL is set, two
# workers, text logs. The caller exports any further settings.
node_env() {
    NODE="$(mktemp -d)"
    PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export GENOMEPORT_VAR_DIR="$NODE/var" GENOMEPORT_PORT="$PORT" GENOMEPORT_HOST=127.0.0.1 \
           GENOMEPORT_PUBLIC_URL="http://127.0.0.1:$PORT" GENOMEPORT_WORKERS=2 GENOMEPORT_LOG_FORMAT=text
}

# node_start: `genomeport serve` in a session of its own, its log in $NODE, stopped
# (the whole session) and $NODE removed when the script exits; returns once the
# node answers /health/ready, or fails with the log's tail after 30 seconds.
node_start() {
    setsid "$ROOT/.venv/bin/genomeport" serve >"$NODE/server.log" 2>&1 &
    SERVER=$!
    trap node_stop EXIT
    for _ in $(seq 1 150); do
        curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    tail -30 "$NODE/server.log" >&2
    return 1
}

node_stop() {
    kill -TERM -- "-$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$NODE"
}
