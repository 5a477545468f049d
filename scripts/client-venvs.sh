#!/usr/bin/env bash
# Separate virtualenvs for tools whose dependency pins clash with the node's:
#   var/venvs/toil         toil[cwl]  (toil-cwl-runner, toil-wes-cwl-runner)
#   var/venvs/wes-service  wes-service (wes-client and the reference WES server)
# Idempotent; usage: scripts/client-venvs.sh [toil|wes-service]...
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENVS="${GENOMEPORT_VENVS:-$ROOT/var/venvs}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(toil wes-service)
for name in "${want[@]}"; do
    case "$name" in
        toil) pkgs=("toil[cwl]"); probe=toil-cwl-runner ;;  # + wes_client (below)
        wes-service) pkgs=("wes-service" "setuptools<81"); probe=wes-client ;;
        *) echo "unknown venv $name" >&2; exit 2 ;;
    esac
    if [ ! -x "$VENVS/$name/bin/$probe" ]; then
        "$PY" -m venv "$VENVS/$name"
        "$VENVS/$name/bin/pip" install -q --upgrade pip
        "$VENVS/$name/bin/pip" install -q "${pkgs[@]}"
    fi
    if [ "$name" = toil ] && ! "$VENVS/toil/bin/python" -c "import wes_client.util" 2>/dev/null; then
        # toil-wes-cwl-runner imports wes_client; its own pins (old connexion) are not needed
        "$VENVS/toil/bin/pip" install -q --no-deps wes-service
        "$VENVS/toil/bin/pip" install -q werkzeug
    fi
done
